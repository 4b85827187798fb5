{#- Keep one row per key.
    Change feeds: the greatest updated_at; ties and append-only entities: the later
    partition (_dt), then the later file name, then the later line (SOURCES.md).
    distinct on, not row_number() = 1: PostgreSQL estimates its rows (one per key) where it
    estimates a row_number filter at a fraction of a percent, and then joins the latest users
    (estimated at ~500 of 200,000) with nested loops over millions of rows. -#}
{% macro dedup(relation, key, updated_at=none) -%}
    select distinct on ({{ key | join(', ') }}) *
    from {{ relation }}
    order by
        {{ key | join(', ') }},
        {% if updated_at %}{{ updated_at }} desc,{% endif %}
        _dt desc, _file desc, _line desc
{%- endmacro %}
