{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_dirty_days('activity_date') }}",
        post_hook=[
            "{{ record_incremental_state() }}",
            "create index if not exists {{ this.identifier }}_date_idx on {{ this }} (activity_date)",
        ],
    )
}}

-- one row per registered user and day of the spine, with the user's tier (first match
-- wins: high_net_worth, new, active, dormant) and the day's activity

with days as (
    select activity_date from {{ ref('int_days') }}
),

rebuild_days as (
    select activity_date from days where activity_date >= {{ rebuild_from() }}
),

-- the rolling windows need the days before the first rebuilt one
window_days as (
    select day_series.day::date as activity_date
    from (select min(activity_date) as first_day, max(activity_date) as last_day from rebuild_days) as bounds
    cross join lateral generate_series(
        (bounds.first_day - {{ [var('active_window_days'), var('hnw_volume_window_days')] | max - 1 }})::timestamp,
        bounds.last_day::timestamp,
        interval '1 day'
    ) as day_series (day)
),

users as (
    select user_id, registered_date
    from {{ ref('stg_crm__users') }}
    where registered_date <= (select max(activity_date) from days)
),

activity as (
    select * from {{ ref('int_user_activity_daily') }}
    where activity_date >= (select min(activity_date) from window_days)
),

balances as (
    select user_id, snapshot_date, equity_usd
    from {{ ref('stg_exchange__account_balances') }}
    where snapshot_date >= {{ rebuild_from() }}
),

user_day_grid as (
    select users.user_id, users.registered_date, window_days.activity_date
    from users
    cross join window_days
),

user_days_windowed as (
    select
        grid.user_id,
        grid.registered_date,
        grid.activity_date,
        coalesce(activity.is_active, false) as is_active,
        coalesce(activity.volume_usd, 0) as volume_usd,
        coalesce(activity.fees_usd, 0) as fees_usd,
        coalesce(activity.deposits_usd, 0) - coalesce(activity.withdrawals_usd, 0) as net_deposits_usd,
        sum(coalesce(activity.volume_usd, 0)) over (
            partition by grid.user_id order by grid.activity_date
            rows between {{ var('hnw_volume_window_days') - 1 }} preceding and current row
        ) as volume_30d_usd,
        count(activity.user_id) filter (where activity.is_active) over (
            partition by grid.user_id order by grid.activity_date
            rows between {{ var('active_window_days') - 1 }} preceding and current row
        ) as active_days_in_window
    from user_day_grid as grid
    left join activity
        on grid.user_id = activity.user_id and grid.activity_date = activity.activity_date
),

users_tiered as (
    select
        user_days.user_id,
        user_days.activity_date,
        user_days.registered_date,
        case
            when coalesce(balances.equity_usd, 0) >= {{ var('hnw_equity_usd') }}
                or user_days.volume_30d_usd >= {{ var('hnw_volume_30d_usd') }}
                then 'high_net_worth'
            when user_days.activity_date - user_days.registered_date < {{ var('new_user_days') }}
                then 'new'
            when user_days.active_days_in_window > 0 then 'active'
            else 'dormant'
        end as tier,
        user_days.is_active,
        user_days.volume_usd,
        user_days.fees_usd,
        user_days.net_deposits_usd,
        user_days.volume_30d_usd,
        coalesce(balances.equity_usd, 0) as equity_usd
    from user_days_windowed as user_days
    inner join rebuild_days on user_days.activity_date = rebuild_days.activity_date
    left join balances
        on user_days.user_id = balances.user_id
        and user_days.activity_date = balances.snapshot_date
    where user_days.registered_date <= user_days.activity_date
)

select * from users_tiered
