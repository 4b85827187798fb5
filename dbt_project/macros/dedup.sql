{#- Keep one row per key.
    Change feeds: the greatest updated_at; ties and append-only entities: the later
    partition (_dt), then the later file name, then the later line (SOURCES.md). -#}
{% macro dedup(relation, key, updated_at=none) -%}
    select *
    from (
        select
            ranked.*,
            row_number() over (
                partition by {{ key | join(', ') }}
                order by
                    {% if updated_at %}{{ updated_at }} desc,{% endif %}
                    _dt desc, _file desc, _line desc
            ) as dedup_rank
        from {{ relation }} as ranked
    ) as deduplicated
    where dedup_rank = 1
{%- endmacro %}
