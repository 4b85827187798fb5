{#-
  Incremental bookkeeping: what a daily run must rebuild, without reading history.

  Every run records, in intermediate.incremental_state under '__run__', the greatest
  audit.partitions.load_id that existed when it started (the run's ceiling). Each
  incremental model records, in the same transaction as its data (post-hook), the ceiling
  it was built up to (its watermark) and the first day it rebuilt, so a failed model simply
  catches up on its next run, and its data tests can look at the rebuilt days only
  (get_where_subquery).

  An incremental model rebuilds every day from its "dirty from" date through the as-of date
  (rolling windows make later days depend on earlier ones). Dirty from is the least of:
  - the earliest dt among partitions loaded (or re-delivered) since the watermark, minus
    late_arrival_days (a record may be that much older than its partition);
  - the earliest day the incrementally staged entities (trades, account balances) changed,
    which their staging models journal in intermediate.incremental_changes as they apply
    new rows (including the days of versions they replace or that a re-delivery removed);
  - for the other dated entities the incremental models read, the earliest day of any
    version of a key delivered since the watermark (a record older than the late-arrival
    rule allows, a re-sent key that moves to another day);
  - the earliest registration date, old or new, of a new user or one whose registered_at
    moved (a user's changed device or IP changes links, which only the trade risk alerts
    follow, for that user alone: relinked_user_ids);
  - everything, when a product's quote_asset or product_line changed, a users partition was
    re-delivered (it may have taken away a user's latest version, whose registration can be
    any day), or the model has no state yet.
  Each part reads only rows delivered since the watermark (plus, for those keys, their other
  versions in small tables), never the history of the big facts.
-#}

{% macro incremental_state_relation() -%}
    intermediate.incremental_state
{%- endmacro %}

{% macro incremental_changes_relation() -%}
    intermediate.incremental_changes
{%- endmacro %}

{#- Entities read through plain staging views whose dated records can move older days:
    (raw table, key columns, the record's own day). -#}
{% macro dated_view_entities() %}
    {{ return([
        ('exchange_product_events', ['event_id'], utc_date('event_at')),
        ('exchange_asset_prices', ['asset', 'price_date'], 'price_date'),
        ('exchange_transfers', ['transfer_id'], utc_date('created_at')),
        ('exchange_wealth_events', ['event_id'], utc_date('event_at')),
        ('crm_kyc_events', ['event_id'], utc_date('event_at')),
    ]) }}
{% endmacro %}

{% macro incremental_state_init() %}
    create schema if not exists intermediate;
    create table if not exists {{ incremental_state_relation() }} (
        model text primary key,
        load_id bigint not null,
        rebuilt_from date,
        updated_at timestamptz not null default now()
    );
    alter table {{ incremental_state_relation() }} add column if not exists rebuilt_from date;
    create table if not exists {{ incremental_changes_relation() }} (
        load_id bigint not null,
        model text not null,
        first_date date not null,
        recorded_at timestamptz not null default now()
    );
    insert into {{ incremental_state_relation() }} (model, load_id, updated_at)
    select '__run__', coalesce(max(load_id), 0), now()
    from {{ var('audit_schema') }}.partitions
    on conflict (model) do update set load_id = excluded.load_id, updated_at = excluded.updated_at;
    -- journal entries every model has caught up with are no longer needed
    delete from {{ incremental_changes_relation() }}
    where load_id <= (
        select min(load_id) from {{ incremental_state_relation() }} where model <> '__run__'
    );
{% endmacro %}

{#- Post-hook: the model is built up to the run's ceiling, from rebuilt_from (null: all). -#}
{% macro record_incremental_state(rebuilt_from=none, grain='day') %}
    {%- if rebuilt_from is none and is_incremental() -%}
        {%- set rebuilt_from = rebuild_from(grain) -%}
    {%- endif -%}
    insert into {{ incremental_state_relation() }} (model, load_id, rebuilt_from, updated_at)
    select
        '{{ this.identifier }}',
        load_id,
        {{ rebuilt_from if rebuilt_from is not none else 'null::date' }},
        now()
    from {{ incremental_state_relation() }}
    where model = '__run__'
    on conflict (model) do update set
        load_id = excluded.load_id,
        rebuilt_from = excluded.rebuilt_from,
        updated_at = excluded.updated_at
{% endmacro %}

{#- The run's ceiling and this model's watermark, as a one-row CTE body. -#}
{% macro incremental_window_state() %}
    select
        coalesce((
            select load_id from {{ incremental_state_relation() }}
            where model = '{{ this.identifier }}'
        ), -1) as processed,
        (
            select load_id from {{ incremental_state_relation() }}
            where model = '__run__'
        ) as ceiling,
        exists (
            select 1 from {{ incremental_state_relation() }}
            where model = '{{ this.identifier }}'
        ) as has_state
{% endmacro %}

{#- Every version of the users with a version delivered since the watermark (a `state` CTE
    must be in scope): is_new, and recency 1 for the latest new and the latest earlier
    version of each user. -#}
{% macro users_with_new_versions(columns) %}
    select
        users.user_id,
        {%- for column in columns %}
        users.{{ column }},
        {%- endfor %}
        users._load_id > state.processed as is_new,
        row_number() over (
            partition by users.user_id, users._load_id > state.processed
            order by users.updated_at desc, users._dt desc, users._file desc, users._line desc
        ) as recency
    from {{ var('raw_schema') }}.crm_users as users
    cross join state
    where users._load_id <= state.ceiling
        and users.user_id in (
            select new_users.user_id
            from {{ var('raw_schema') }}.crm_users as new_users
            cross join state
            where new_users._load_id > state.processed and new_users._load_id <= state.ceiling
        )
{% endmacro %}

{#- A row when a partition of source/entity was re-delivered since the watermark (`state` in
    scope): what the earlier delivery held is gone from raw. -#}
{% macro partition_redelivered(source_name, entity) %}
    select 1
    from {{ var('audit_schema') }}.partitions as partitions
    cross join state
    where partitions.source = '{{ source_name }}' and partitions.entity = '{{ entity }}'
        and partitions.load_id > state.processed and partitions.load_id <= state.ceiling
        and partitions.loads > 1
{% endmacro %}

{#- The first day an incremental run must rebuild, as a date literal; none on a full build. -#}
{% macro incremental_dirty_from() %}
    {%- if not execute or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set raw = var('raw_schema') -%}

    {%- set query -%}
        with state as (
            {{ incremental_window_state() }}
        ),

        new_partitions as (
            select partitions.partition_date as dt
            from {{ var('audit_schema') }}.partitions as partitions
            cross join state
            where partitions.load_id > state.processed and partitions.load_id <= state.ceiling
        ),

        journal as (
            select min(changes.first_date) as first_date
            from {{ incremental_changes_relation() }} as changes
            cross join state
            where changes.load_id > state.processed and changes.load_id <= state.ceiling
        ),

        {%- for table, key, event_date in dated_view_entities() %}
        touched_{{ table }} as (
            select min({{ event_date }}) as first_date
            from {{ raw }}.{{ table }}
            where ({{ key | join(', ') }}) in (
                select {{ key | join(', ') }}
                from {{ raw }}.{{ table }} as new_rows
                cross join state
                where new_rows._load_id > state.processed and new_rows._load_id <= state.ceiling
            )
        ),
        {%- endfor %}

        -- users with a new version: the latest new version against the latest earlier one
        user_versions as (
            {{ users_with_new_versions(['registered_at']) }}
        ),

        -- new users, and users whose registration moved: from the earlier of the two dates
        moved_users as (
            select least(new_version.registered_at, old_version.registered_at) as earliest_registered_at
            from user_versions as new_version
            left join user_versions as old_version
                on new_version.user_id = old_version.user_id
                and not old_version.is_new and old_version.recency = 1
            where new_version.is_new and new_version.recency = 1
                and new_version.registered_at is distinct from old_version.registered_at
        ),

        -- a re-delivered users partition may have taken away the winning version of a user,
        -- whose registration (not the record's own time) can be any day: rebuild everything
        redelivered_users as (
            {{ partition_redelivered('crm', 'users') }}
        ),

        product_versions as (
            select
                products.product_id,
                products.product_line,
                products.quote_asset,
                products._load_id > state.processed as is_new,
                row_number() over (
                    partition by products.product_id, products._load_id > state.processed
                    order by products._dt desc, products._file desc, products._line desc
                ) as recency
            from {{ raw }}.exchange_products as products
            cross join state
            where products._load_id <= state.ceiling
        ),

        changed_products as (
            select new_version.product_id
            from product_versions as new_version
            inner join product_versions as old_version
                on new_version.product_id = old_version.product_id
                and new_version.is_new and not old_version.is_new
                and new_version.recency = 1 and old_version.recency = 1
            where (new_version.product_line, new_version.quote_asset)
                is distinct from (old_version.product_line, old_version.quote_asset)
        )

        select coalesce(least(
            (select min(dt) from new_partitions) - {{ var('late_arrival_days') }},
            (select first_date from journal),
            {%- for table, key, event_date in dated_view_entities() %}
            (select first_date from touched_{{ table }}),
            {%- endfor %}
            (select min({{ utc_date('earliest_registered_at') }}) from moved_users),
            (select date '1900-01-01' from state where not has_state),
            (select date '1900-01-01' where exists (select 1 from changed_products)),
            (select date '1900-01-01' where exists (select 1 from redelivered_users))
        ), date '9999-12-31')::text as dirty_from
    {%- endset -%}
    {%- set result = run_query(query) -%}
    {{ return("date '" ~ result.columns[0].values()[0] ~ "'") }}
{% endmacro %}

{#- Users whose links may have changed since the model's watermark: new users, and users
    whose latest new version has another device or sign-up IP than their latest earlier
    one. A list of ids (empty on a full build). -#}
{% macro relinked_user_ids() %}
    {%- if not execute or not is_incremental() -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set query -%}
        with state as (
            {{ incremental_window_state() }}
        ),

        user_versions as (
            {{ users_with_new_versions(['device_id', 'signup_ip']) }}
        )

        select new_version.user_id
        from user_versions as new_version
        left join user_versions as old_version
            on new_version.user_id = old_version.user_id
            and not old_version.is_new and old_version.recency = 1
        where new_version.is_new and new_version.recency = 1
            and (
                old_version.user_id is null
                or (new_version.device_id, new_version.signup_ip)
                is distinct from (old_version.device_id, old_version.signup_ip)
            )
        order by 1
    {%- endset -%}
    {{ return(run_query(query).columns[0].values() | list) }}
{% endmacro %}

{#- Pre-hook of int_risk_trade_alerts: drop the linked-account alerts of relinked users'
    pairs on every day (the days from dirty-from are dropped anyway). -#}
{% macro delete_relinked_pair_alerts() %}
    {%- set relinked = relinked_user_ids() -%}
    {%- if relinked -%}
        delete from {{ this }}
        where alert_type = 'linked_account_trade'
            and (
                split_part(subject_id, '|', 1) = any({{ text_array(relinked) }})
                or split_part(subject_id, '|', 2) = any({{ text_array(relinked) }})
            )
    {%- else -%}
        select 1
    {%- endif -%}
{% endmacro %}

{#- A SQL list of text literals, e.g. for `= any(...)`; never empty (an impossible id). -#}
{% macro text_array(values) -%}
    array[{% for v in values %}'{{ v | replace("'", "''") }}'{% if not loop.last %}, {% endif %}{% else %}null{% endfor %}]::text[]
{%- endmacro %}

{#- Pre-hook of an incremental model: drop the days (weeks, months) about to be rebuilt. -#}
{% macro delete_dirty_days(date_column, grain='day') %}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ date_column }} >= {{ rebuild_from(grain) }}
    {%- else -%}
        select 1
    {%- endif -%}
{% endmacro %}

{#- The first day a model's select must produce, as a date expression: dirty-from (truncated
    to the model's grain: the first day of its week or month) when incremental, else all. -#}
{% macro rebuild_from(grain='day') %}
    {%- set dirty_from = incremental_dirty_from() -%}
    {%- if dirty_from is none -%}
        {{ return("date '1900-01-01'") }}
    {%- elif grain == 'day' -%}
        {{ return(dirty_from) }}
    {%- else -%}
        {{ return("date_trunc('" ~ grain ~ "', " ~ dirty_from ~ ")::date") }}
    {%- endif -%}
{% endmacro %}

{#- Config shared by the date-partitioned incremental models: drop the dirty days (or weeks,
    months: grain), append the rebuilt ones, record the watermark; their data tests look at
    the rebuilt dates only (get_where_subquery). Their selects end with `order by` the date:
    a full build then lays the rows out by date, and a day's delete and insert touch the
    table's last pages instead of every page. -#}
{% macro day_incremental_config(date_column, grain='day', indexes=[], pre_hooks=[], meta={}) %}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook=pre_hooks + ["{{ delete_dirty_days('" ~ date_column ~ "', '" ~ grain ~ "') }}"],
        post_hook=["{{ record_incremental_state(grain='" ~ grain ~ "') }}"],
        indexes=[{'columns': [date_column]}] + indexes,
        meta=dict(meta, rebuild_window_column=date_column),
    ) }}
{% endmacro %}
