{#-
  Incremental bookkeeping.

  Every run records, in intermediate.incremental_state under '__run__', the greatest
  audit.partitions.load_id that existed when it started (the run's ceiling). Each
  incremental model records the ceiling it was last built up to, in the same transaction
  as its data (post-hook), so a failed model simply catches up on its next run.

  An incremental model rebuilds every day from its "dirty from" date through the as-of
  date: the earliest dt among partitions loaded (or re-delivered) since its watermark,
  minus late_arrival_days (a record may be that much older than its partition). Rolling
  windows make later days depend on earlier ones, hence "through the as-of date".
  Two rarer changes reach further back: a user whose registered_at is new or moved
  (dirty from the earliest registration date it ever had), and a product whose
  quote_asset or product_line changed (everything is rebuilt).
-#}

{% macro incremental_state_relation() -%}
    intermediate.incremental_state
{%- endmacro %}

{% macro incremental_state_init() %}
    create schema if not exists intermediate;
    create table if not exists {{ incremental_state_relation() }} (
        model text primary key,
        load_id bigint not null,
        updated_at timestamptz not null default now()
    );
    insert into {{ incremental_state_relation() }} (model, load_id, updated_at)
    select '__run__', coalesce(max(load_id), 0), now()
    from {{ var('audit_schema') }}.partitions
    on conflict (model) do update set load_id = excluded.load_id, updated_at = excluded.updated_at;
{% endmacro %}

{% macro record_incremental_state() %}
    insert into {{ incremental_state_relation() }} (model, load_id, updated_at)
    select '{{ this.identifier }}', load_id, now()
    from {{ incremental_state_relation() }}
    where model = '__run__'
    on conflict (model) do update set load_id = excluded.load_id, updated_at = excluded.updated_at
{% endmacro %}

{#- The first day an incremental run must rebuild, as a date literal; none on a full build. -#}
{% macro incremental_dirty_from() %}
    {%- if not execute or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set raw = var('raw_schema') -%}
    {%- set query -%}
        with state as (
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
        ),

        new_partitions as (
            select partitions.partition_date as dt
            from {{ var('audit_schema') }}.partitions as partitions
            cross join state
            where partitions.load_id > state.processed and partitions.load_id <= state.ceiling
        ),

        user_versions as (
            select users.user_id, users.registered_at, users._load_id > state.processed as is_new
            from {{ raw }}.crm_users as users
            cross join state
            where users._load_id <= state.ceiling
        ),

        moved_users as (
            select user_id, min(registered_at) as earliest_registered_at
            from user_versions
            group by user_id
            having bool_or(is_new) and (bool_and(is_new) or count(distinct registered_at) > 1)
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
        ),

        -- records older than the late-arrival rule allows, or new versions of older keys
        {%- set keyed = [
            ('exchange_trades', 'trade_id', 'executed_at'),
            ('exchange_transfers', 'transfer_id', 'created_at'),
            ('exchange_wealth_events', 'event_id', 'event_at'),
        ] %}
        {%- for table, key, event_time in keyed %}
        touched_{{ table }} as (
            select min({{ utc_date('all_versions.' ~ event_time) }}) as first_date
            from {{ raw }}.{{ table }} as all_versions
            where all_versions.{{ key }} in (
                select new_rows.{{ key }}
                from {{ raw }}.{{ table }} as new_rows
                cross join state
                where new_rows._load_id > state.processed and new_rows._load_id <= state.ceiling
            )
        ),
        {%- endfor %}

        touched_daily as (
            select min(prices.price_date) as first_date
            from {{ raw }}.exchange_asset_prices as prices
            cross join state
            where prices._load_id > state.processed and prices._load_id <= state.ceiling
            union all
            select min(balances.snapshot_date)
            from {{ raw }}.exchange_account_balances as balances
            cross join state
            where balances._load_id > state.processed and balances._load_id <= state.ceiling
        )

        select coalesce(least(
            (select min(dt) from new_partitions) - {{ var('late_arrival_days') }},
            {%- for table, key, event_time in keyed %}
            (select first_date from touched_{{ table }}),
            {%- endfor %}
            (select min(first_date) from touched_daily),
            (select min({{ utc_date('earliest_registered_at') }}) from moved_users),
            (select date '1900-01-01' from state where not has_state),
            (select date '1900-01-01' where exists (select 1 from changed_products))
        ), date '9999-12-31')::text as dirty_from
    {%- endset -%}
    {%- set result = run_query(query) -%}
    {{ return("date '" ~ result.columns[0].values()[0] ~ "'") }}
{% endmacro %}

{#- Pre-hook of an incremental model: drop the days about to be rebuilt. -#}
{% macro delete_dirty_days(date_column) %}
    {%- if is_incremental() -%}
        delete from {{ this }} where {{ date_column }} >= {{ incremental_dirty_from() }}
    {%- else -%}
        select 1
    {%- endif -%}
{% endmacro %}

{#- The first day a model's select must produce: dirty-from when incremental, else all. -#}
{% macro rebuild_from() %}
    {%- set dirty_from = incremental_dirty_from() -%}
    {%- if dirty_from is none -%}
        date '1900-01-01'
    {%- else -%}
        {{ dirty_from }}
    {%- endif -%}
{% endmacro %}
