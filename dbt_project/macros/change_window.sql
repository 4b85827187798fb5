{#-
  The change window of a build. exops.transform computes it once, before dbt starts
  (plugins/exops/transform/window.py: the load audit and the rows loaded since the last
  successful build), records it in transform.builds and hands it to dbt in the environment,
  one variable per value: EXOPS_DBT_<NAME> (EXOPS_DBT_WINDOW_START ...), read through
  window_var(name) here and, in the data tests' `where`, through env_var. Not as --vars: dbt
  drops partial parsing and parses the whole project again whenever the vars change (every
  build), while a changed environment variable re-parses only the files that read it at parse
  time (the test YAML and the few models whose config depends on the window). A value given
  with --vars still wins (a build by hand).

  - window_start (window_start_week, window_start_month: its Monday, its month's first day):
    the first day the day models rebuild, through the as-of date; 1900-01-01 on a full build;
  - all_users_start: the first day the user-keyed day models (window_config's user_column)
    rebuild for every user; from window_start until then they rebuild the rows of the users
    of source('transform', 'window_users') only, each from its from_date (late or re-sent
    records of theirs). Equal to window_start when every user's days must be rebuilt;
  - since_load_id / ceiling_load_id: the staged facts stage the raw rows loaded in between;
  - restage: staged facts rebuilt whole (a partition of theirs was re-delivered);
  - as_of_date: the last day delivered (window_days: how many days the window spans);
  - relinked_users, changed_campaigns, country_campaigns, enrolled_campaigns,
    rebuild_all_campaigns: see the models that read them (macros/keyed_rebuilds.sql).

  The data tests of the windowed models look at the window's rows only (their `where`
  config: `<date column> >= window_start`; everything on a full build).

  Run by hand (`dbt build`, `dbt docs generate` without the environment) nothing fails: a
  first build builds everything; on existing tables the staged facts stage nothing new
  (loaded_dates empty, since = ceiling = 0) and the day models rebuild every day from what is
  staged. `exops transform` is the way to bring the warehouse up to date.
-#}

{#- A value of the window: --vars first, then EXOPS_DBT_<NAME> (text for a text default,
    JSON otherwise), then the default. -#}
{% macro window_var(name, default) -%}
    {%- set raw = env_var('EXOPS_DBT_' ~ (name | upper), '') -%}
    {%- if raw == '' -%}
        {%- set value = default -%}
    {%- elif default is string -%}
        {%- set value = raw -%}
    {%- else -%}
        {%- set value = fromjson(raw) -%}
    {%- endif -%}
    {{ return(var(name, value)) }}
{%- endmacro %}

{#- The first day (week, month) a model rebuilds, as a date literal: everything unless this is
    an incremental run. -#}
{% macro window_start(grain='day') -%}
    {%- set name = {'day': 'window_start', 'week': 'window_start_week', 'month': 'window_start_month'}[grain] -%}
    {%- if is_incremental() -%}
        cast('{{ window_var(name, "1900-01-01") }}' as date)
    {%- else -%}
        cast('1900-01-01' as date)
    {%- endif -%}
{%- endmacro %}

{#- How many days an incremental run rebuilds, from window_start (with every_user, from
    all_users_start: what the user-keyed models rebuild for every user) through the as-of
    date; none (a full build, or no as-of date given) when unknown. -#}
{% macro window_days(every_user=false) -%}
    {%- set as_of = window_var('as_of_date', '') if is_incremental() else '' -%}
    {%- if as_of == '' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set start = window_var('window_start', '1900-01-01') -%}
    {%- if every_user -%}
        {%- set start = window_var('all_users_start', start) -%}
    {%- endif -%}
    {%- set parse = modules.datetime.date.fromisoformat -%}
    {{ return((parse(as_of) - parse(start)).days + 1) }}
{%- endmacro %}

{#- The first day this build rebuilds, for what is not incremental itself (a view's pre-hook):
    1900-01-01 on a full build or without vars. -#}
{% macro build_window_start() -%}
    {#- (hooks are rendered at parse time too: the window only when executing) -#}
    cast('{{ window_var("window_start", "1900-01-01") if execute else "1900-01-01" }}' as date)
{%- endmacro %}

{#- Config of a model incremental by day (week, month): an incremental run deletes the
    window's days, then appends them again (dbt's append strategy after a pre-hook). Not
    delete+insert by key: a day the window emptied (a re-delivery took its only trade away)
    must lose its rows too. Their selects end with `order by` the date: a full build lays the
    rows out by date, and a day's delete and insert touch the table's last pages. Indexed by
    the date, unless one of `indexes` leads with it: a unique key led by the date serves the
    window's deletes and reads too, and a day's rows land on its last pages (a key led by the
    user has a page of most users to write again each day, each a full-page image in the WAL
    after a checkpoint), so models whose readers look days up, not users, lead with the date.
    With `user_column`, a user-keyed model: before all_users_start only the rows of the
    window's users go (user_window_join / user_window_filter select what comes back). -#}
{% macro window_config(date_column, grain='day', indexes=[], pre_hooks=[], user_column=none) %}
    {%- if user_column -%}
        {%- set deletes = [
            "{{ delete_window('" ~ date_column ~ "', 'day', every_user=true) }}",
            "{{ delete_window_users('" ~ date_column ~ "', '" ~ user_column ~ "') }}",
        ] -%}
    {%- else -%}
        {%- set deletes = ["{{ delete_window('" ~ date_column ~ "', '" ~ grain ~ "') }}"] -%}
    {%- endif -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=pre_hooks + deletes,
        indexes=([] if date_column in indexes | map(attribute='columns') | map('first') | list else [{'columns': [date_column]}]) + indexes,
    ) }}
{% endmacro %}

{% macro delete_window(date_column, grain='day', every_user=false) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where {{ date_column }} >= {{ all_users_start() if every_user else window_start(grain) }}
    {%- endif -%}
{%- endmacro %}

{#- Whether this run of a user-keyed model rebuilds some days for the window's users only. -#}
{% macro user_window_keyed() -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set everyone = window_var('all_users_start', '') -%}
    {{ return(everyone != '' and everyone > window_var('window_start', '1900-01-01')) }}
{%- endmacro %}

{#- The first day a user-keyed model rebuilds for every user, as a date literal. -#}
{% macro all_users_start() -%}
    {%- if user_window_keyed() -%}
        cast('{{ window_var("all_users_start", "1900-01-01") }}' as date)
    {%- else -%}
        {{ window_start() }}
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook of a user-keyed model: the rows of the window's users from their from_date. -#}
{% macro delete_window_users(date_column, user_column) -%}
    {%- if user_window_keyed() -%}
        delete from {{ this }} as known
        using {{ source('transform', 'window_users') }} as window_users
        where known.{{ user_column }} = window_users.user_id
            and known.{{ date_column }} >= window_users.from_date
            -- a bound the date index can use (a table indexed by date first is otherwise
            -- read whole to join the users)
            and known.{{ date_column }} >= {{ window_start() }}
    {%- endif -%}
{%- endmacro %}

{#- In a user-keyed model's select, after `from <relation>`: joins the window's users (one row
    per user at most) when the run is keyed; with user_window_filter in its `where`, it
    keeps the rows of every user from all_users_start and of the window's users from their
    from_date. Calls source() always, so that the lineage shows the source. -#}
{% macro user_window_join(user_column) -%}
    {%- set users = source('transform', 'window_users') -%}
    {%- if user_window_keyed() %}
    left join {{ users }} as window_users on {{ user_column }} = window_users.user_id
    {%- endif -%}
{%- endmacro %}

{% macro user_window_filter(date_column) -%}
    {%- if user_window_keyed() -%}
        ({{ date_column }} >= {{ all_users_start() }} or {{ date_column }} >= window_users.from_date)
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- A SQL list of text literals for `in (...)`; never empty (an impossible id). -#}
{% macro text_list(values) -%}
    ({% for v in values %}'{{ v | replace("'", "''") }}'{% if not loop.last %}, {% endif %}{% else %}null{% endfor %})
{%- endmacro %}
