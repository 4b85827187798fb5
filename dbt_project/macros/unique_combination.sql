{#- Generic test: the combination of columns is unique (dbt_utils is not available).
    Where the database already enforces it (PostgreSQL: a valid unique index on exactly these
    columns, as the big incremental models declare in their `indexes` config), the test reads
    only the catalogue: the scan below runs only when no such index exists, so the test still
    fails on duplicates if the index is ever dropped, and scans on adapters without indexes.
    (A `where:` config makes `model` a subquery: then the scan always runs.) -#}
{% test unique_combination(model, columns) %}
    {{ adapter.dispatch('unique_combination_sql', 'exops')(model, columns) }}
{% endtest %}

{% macro default__unique_combination_sql(model, columns, unless_enforced='') -%}
    select {{ columns | join(', ') }}, count(*) as rows_with_key
    from {{ model }}
    {{ unless_enforced }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{%- endmacro %}

{% macro postgres__unique_combination_sql(model, columns) -%}
    {%- if model is string or not model.identifier -%}
        {{ default__unique_combination_sql(model, columns) }}
    {%- else -%}
        {%- set wanted = columns | map('lower') | sort -%}
        {%- set unless_enforced -%}
    -- an uncorrelated condition: PostgreSQL evaluates it once and skips the scan when false
    where not exists (
        select 1
        from pg_catalog.pg_index as i
        inner join pg_catalog.pg_class as c on i.indrelid = c.oid
        inner join pg_catalog.pg_namespace as n on c.relnamespace = n.oid
        where
            n.nspname = '{{ model.schema }}'
            and c.relname = '{{ model.identifier }}'
            and i.indisunique and i.indisvalid
            and i.indpred is null and i.indexprs is null
            and array(
                select a.attname::text from pg_catalog.pg_attribute as a
                where a.attrelid = c.oid and a.attnum = any(i.indkey)
                order by a.attname::text
            ) = array[{% for c in wanted %}'{{ c }}'{% if not loop.last %}, {% endif %}{% endfor %}]::text []
    )
        {%- endset -%}
        {{ default__unique_combination_sql(model, columns, unless_enforced) }}
    {%- endif -%}
{%- endmacro %}

{#- Generic test: a numeric column lies within [min_value, max_value] (either may be omitted). -#}
{% test between(model, column_name, min_value=none, max_value=none) %}
    select {{ column_name }}
    from {{ model }}
    where
        false
        {% if min_value is not none %} or {{ column_name }} < {{ min_value }}{% endif %}
        {% if max_value is not none %} or {{ column_name }} > {{ max_value }}{% endif %}
{% endtest %}
