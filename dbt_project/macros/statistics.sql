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

{#- Tables are created anew each build; an incremental table only when rebuilt whole (a full
    build, window_start 1900-01-01, or a restaged model's full_refresh): a day's rows added to
    a year change its statistics little, and for the new days the planner reads the index's
    actual bounds (analyzing the year's big tables cost seconds of every daily build). -#}
{% macro postgres__refresh_statistics() -%}
    {#- at parse time dbt renders the hook too: no window read there, or every model would
        be parsed again whenever the window moves -#}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set full_build = window_var('window_start', '1900-01-01') == '1900-01-01' -%}
    {%- if config.get('materialized') == 'table'
        or (config.get('materialized') == 'incremental' and (full_build or should_full_refresh())) -%}
        analyze {{ this }}
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook of the few aggregations whose groups are nearly as many as their input rows (the
    user x product x day rollup: 2.2 input rows per group; the user x day activity).
    PostgreSQL underestimates such groups several-fold, plans a hash aggregation that spills
    in batches to disk, and then sorts its output again; sorting once and aggregating in order
    measured 1.5x faster at 60,000 users (31 s against 20 s). -#}
{% macro prefer_sorted_aggregation() -%}
    {{ planner_off('enable_hashagg') }}
{%- endmacro %}

{#- Pre-hook of the campaign days: PostgreSQL estimates the campaigns' days and members at a
    fraction of what they are and reads the rollup by nested loops, one index scan per member
    and campaign; hash joins over the days' rows measured 1.9x faster for a full build (11 s
    against 6 s at 60,000 users x 120 days) and 2x for a day recomputing a campaign. -#}
{% macro prefer_hash_joins() -%}
    {{ planner_off('enable_nestloop') }}
{%- endmacro %}

{#- A planner method off for the model's own transaction only (`set local`); other adapters
    plan for themselves. -#}
{% macro planner_off(setting) -%}
    {{ return(adapter.dispatch('planner_off', 'exops')(setting)) }}
{%- endmacro %}

{% macro default__planner_off(setting) -%}
{%- endmacro %}

{% macro postgres__planner_off(setting) -%}
    set local {{ setting }} = off
{%- endmacro %}
