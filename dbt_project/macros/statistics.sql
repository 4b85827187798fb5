{#- Post-hook of every model: fresh planner statistics on what the build just wrote, read by
    the models after it in the same build. PostgreSQL's autovacuum analyzes a new table a
    while later; until then the planner guesses (a year of staged trades estimated at 0.5% of
    its rows made the user x product x day rollup spill its aggregation and sort to disk).
    Adapters that keep statistics themselves do nothing. -#}
{% macro refresh_statistics() -%}
    {{ return(adapter.dispatch('refresh_statistics', 'exops')()) }}
{%- endmacro %}

{% macro default__refresh_statistics() -%}
{%- endmacro %}

{% macro postgres__refresh_statistics() -%}
    {%- if config.get('materialized') in ('table', 'incremental') -%}
        analyze {{ this }}
    {%- endif -%}
{%- endmacro %}
