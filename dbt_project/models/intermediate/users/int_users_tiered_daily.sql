{{ day_incremental_config('activity_date', indexes=[{'columns': ['user_id', 'activity_date'], 'unique': True}]) }}
{%- set from_day = rebuild_from() %}
{%- set window = [var('active_window_days'), var('hnw_volume_window_days')] | max %}
{#- a day's run sums each user's last window of activity rows per rebuilt day; a long
    rebuild (or a full one) rolls windows over the whole user x day grid instead -#}
{%- set rolled = true %}
{%- if execute and is_incremental() %}
    {%- set rebuilt_days = run_query(
        "select count(*) from " ~ ref('int_days') ~ " where activity_date >= " ~ from_day
    ).columns[0].values()[0] %}
    {%- set rolled = rebuilt_days > 2 * window %}
{%- endif %}

-- one row per registered user and day of the spine, with the user's tier (first match
-- wins: high_net_worth, new, active, dormant) and the day's activity

with days as (
    select activity_date from {{ ref('int_days') }}
),

rebuild_days as (
    select activity_date from days where activity_date >= {{ from_day }}
),

users as (
    select user_id, registered_date
    from {{ ref('stg_crm__users') }}
    where registered_date <= (select max(activity_date) from days)
),

balances as (
    select user_id, snapshot_date, equity_usd
    from {{ ref('stg_exchange__account_balances') }}
    where snapshot_date >= {{ from_day }}
),

{% if rolled -%}
-- the rolling windows need the days before the first rebuilt one
window_days as (
    select day_series.day::date as activity_date
    from (select min(activity_date) as first_day, max(activity_date) as last_day from rebuild_days) as bounds
    cross join lateral generate_series(
        (bounds.first_day - {{ window - 1 }})::timestamp,
        bounds.last_day::timestamp,
        interval '1 day'
    ) as day_series (day)
),

activity as (
    select * from {{ ref('int_user_activity_daily') }}
    where activity_date >= (select min(activity_date) from window_days)
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

user_days as (
    select user_days_windowed.*
    from user_days_windowed
    inner join rebuild_days on user_days_windowed.activity_date = rebuild_days.activity_date
    where user_days_windowed.registered_date <= user_days_windowed.activity_date
),
{%- else -%}
-- each activity row of the last window, counted on every rebuilt day whose window holds it
window_activity as (
    select user_id, activity_date, is_active, volume_usd
    from {{ ref('int_user_activity_daily') }}
    where activity_date >= {{ from_day }} - {{ window - 1 }}
),

windowed as (
    select
        window_activity.user_id,
        rebuild_days.activity_date,
        sum(window_activity.volume_usd) filter (
            where window_activity.activity_date > rebuild_days.activity_date - {{ var('hnw_volume_window_days') }}
        ) as volume_30d_usd,
        count(*) filter (
            where window_activity.is_active
                and window_activity.activity_date > rebuild_days.activity_date - {{ var('active_window_days') }}
        ) as active_days_in_window
    from window_activity
    inner join rebuild_days
        on window_activity.activity_date between rebuild_days.activity_date - {{ window - 1 }}
        and rebuild_days.activity_date
    group by 1, 2
),

day_activity as (
    select * from {{ ref('int_user_activity_daily') }}
    where activity_date >= {{ from_day }}
),

user_days as (
    select
        users.user_id,
        users.registered_date,
        rebuild_days.activity_date,
        coalesce(day_activity.is_active, false) as is_active,
        coalesce(day_activity.volume_usd, 0) as volume_usd,
        coalesce(day_activity.fees_usd, 0) as fees_usd,
        coalesce(day_activity.deposits_usd, 0) - coalesce(day_activity.withdrawals_usd, 0) as net_deposits_usd,
        coalesce(windowed.volume_30d_usd, 0) as volume_30d_usd,
        coalesce(windowed.active_days_in_window, 0) as active_days_in_window
    from users
    inner join rebuild_days on users.registered_date <= rebuild_days.activity_date
    left join day_activity
        on users.user_id = day_activity.user_id and rebuild_days.activity_date = day_activity.activity_date
    left join windowed
        on users.user_id = windowed.user_id and rebuild_days.activity_date = windowed.activity_date
),
{%- endif %}

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
    from user_days
    left join balances
        on user_days.user_id = balances.user_id
        and user_days.activity_date = balances.snapshot_date
)

select * from users_tiered
order by activity_date
