{#- Keep one row per key.
    Change feeds: the greatest updated_at; ties and append-only entities: the later
    partition (_dt), then the later file name, then the later line (SOURCES.md).
    distinct on (rather than row_number() = 1) also gives the planner a sane row estimate. -#}
{% macro dedup(relation, key, updated_at=none) -%}
    select distinct on ({{ key | join(', ') }}) *
    from {{ relation }}
    order by
        {{ key | join(', ') }},
        {% if updated_at %}{{ updated_at }} desc,{% endif %}
        _dt desc, _file desc, _line desc
{%- endmacro %}
