{#- Keep one row per key.
    Change feeds: the greatest updated_at; ties and append-only entities: the later
    partition (_dt), then the later file name, then the later line (SOURCES.md). -#}
{% macro dedup(relation, key, updated_at=none) -%}
    select *
    from (
        select
            src.*,
            row_number() over (
                partition by {{ key | join(', ') }}
                order by
                    {% if updated_at %}{{ updated_at }} desc,{% endif %}
                    _dt desc, _file desc, _line desc
            ) as _row_rank
        from {{ relation }} as src
    ) as ranked
    where _row_rank = 1
{%- endmacro %}
