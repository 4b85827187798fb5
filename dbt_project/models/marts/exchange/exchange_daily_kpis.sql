{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_dirty_days('activity_date') }}",
        post_hook="{{ record_incremental_state() }}",
    )
}}

with days as (
    select activity_date
    from {{ ref('int_days') }}
    where activity_date >= {{ rebuild_from() }}
),

trades as (
    select
        executed_date as activity_date,
        count(*) as trade_count,
        sum(volume_usd) as volume_usd,
        sum(fees_usd) as fees_usd
    from {{ ref('int_trades_priced') }}
    where executed_date >= {{ rebuild_from() }}
    group by 1
),

activity as (
    select user_id, activity_date, is_trader, is_active
    from {{ ref('int_user_activity_daily') }}
    where activity_date >= {{ rebuild_from() }} - {{ var('mau_window_days') - 1 }}
        and is_active
),

daily_users as (
    select
        days.activity_date,
        count(distinct activity.user_id) filter (
            where activity.activity_date = days.activity_date and activity.is_trader
        ) as traders,
        count(distinct activity.user_id) filter (
            where activity.activity_date = days.activity_date
        ) as active_users,
        count(distinct activity.user_id) filter (
            where activity.activity_date > days.activity_date - {{ var('wau_window_days') }}
        ) as wau,
        count(distinct activity.user_id) as mau
    from days
    left join activity
        on activity.activity_date between days.activity_date - {{ var('mau_window_days') - 1 }}
        and days.activity_date
    group by 1
),

registrations as (
    select registered_date as activity_date, count(*) as registrations
    from {{ ref('stg_crm__users') }}
    group by 1
),

new_traders as (
    select first_trade_date as activity_date, count(*) as new_traders
    from {{ ref('int_user_first_trades') }}
    group by 1
),

transfers as (
    select
        created_date as activity_date,
        sum(amount_usd) filter (where direction = 'deposit') as deposits_usd,
        sum(amount_usd) filter (where direction = 'withdrawal') as withdrawals_usd
    from {{ ref('int_transfers_priced') }}
    where created_date >= {{ rebuild_from() }}
    group by 1
),

exchange_days as (
    select
        days.activity_date::date as activity_date,
        coalesce(trades.trade_count, 0)::bigint as trade_count,
        coalesce(trades.volume_usd, 0)::numeric as volume_usd,
        coalesce(trades.fees_usd, 0)::numeric as fees_usd,
        daily_users.traders::bigint as traders,
        daily_users.active_users::bigint as active_users,
        daily_users.wau::bigint as wau,
        daily_users.mau::bigint as mau,
        trim_scale(daily_users.active_users::numeric / nullif(daily_users.mau, 0))::numeric as stickiness,
        coalesce(registrations.registrations, 0)::bigint as registrations,
        coalesce(new_traders.new_traders, 0)::bigint as new_traders,
        coalesce(transfers.deposits_usd, 0)::numeric as deposits_usd,
        coalesce(transfers.withdrawals_usd, 0)::numeric as withdrawals_usd
    from days
    inner join daily_users on days.activity_date = daily_users.activity_date
    left join trades on days.activity_date = trades.activity_date
    left join registrations on days.activity_date = registrations.activity_date
    left join new_traders on days.activity_date = new_traders.activity_date
    left join transfers on days.activity_date = transfers.activity_date
)

select * from exchange_days
