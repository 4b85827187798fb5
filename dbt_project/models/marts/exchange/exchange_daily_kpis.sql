{{ window_config('activity_date') }}
{%- set from_day = window_start() %}
{%- set mau = var('mau_window_days') %}
{%- set wau = var('wau_window_days') %}
{#- a window of at most a week (a daily build) counts the WAU and MAU of its days from each
    user's first active day in it and last before it; a longer one sweeps the users' active
    days in order (the spans below) -#}
{%- set window_days = window_days() %}
{%- set count_directly = window_days is not none and window_days <= wau and wau <= mau %}

with days as (
    select activity_date
    from {{ ref('int_days') }}
    where activity_date >= {{ from_day }}
),

-- each trade once: at its maker's row of the user x product x day rollup (a self-trade's user
-- pays both fees there, so the fees of all rows are the trades' fees)
trades as (
    select
        activity_date,
        sum(maker_trade_count) as trade_count,
        sum(maker_volume_usd) as volume_usd,
        sum(fees_usd) as fees_usd
    from {{ ref('int_user_product_daily') }}
    where activity_date >= {{ from_day }}
    group by 1
),

activity as (
    select user_id, activity_date, is_trader
    from {{ ref('int_user_activity_daily') }}
    where activity_date >= {{ from_day }} - {{ mau - 1 }}
        and is_active
),

{% if count_directly -%}
-- a user counts in the WAU (MAU) of a day d of the window when active in the window by d
-- (the window is at most a week, so those days are among d's last 7), or last active before
-- the window on d-6 (d-27) or later
user_activity as (
    select
        user_id,
        min(activity_date) filter (where activity_date >= {{ from_day }}) as first_in_window,
        max(activity_date) filter (where activity_date < {{ from_day }}) as last_before
    from activity
    group by 1
),

rolling_users as (
    select
        days.activity_date,
        count(*) filter (
            where user_activity.first_in_window <= days.activity_date
            or user_activity.last_before >= days.activity_date - {{ wau - 1 }}
        ) as wau,
        count(*) filter (
            where user_activity.first_in_window <= days.activity_date
            or user_activity.last_before >= days.activity_date - {{ mau - 1 }}
        ) as mau
    from days
    -- every day of the window, also with no one active
    left join user_activity on true
    group by 1
),

{% else -%}
-- a user active on day a counts in the WAU (MAU) of days a..a+6 (a+27): each active day opens
-- a span that the user's next active day cuts short, so the spans do not overlap, and a
-- running sum of +1 at each span's start and -1 after its end counts distinct users per day
active_spans as (
    select
        activity_date as span_start,
        least(lead(activity_date) over by_user - 1, activity_date + {{ wau - 1 }}) as wau_end,
        least(lead(activity_date) over by_user - 1, activity_date + {{ mau - 1 }}) as mau_end
    from activity
    window by_user as (partition by user_id order by activity_date)
),

span_edges as (
    select span_start as edge_date, 1 as wau_delta, 1 as mau_delta from active_spans
    union all
    select wau_end + 1 as edge_date, -1 as wau_delta, 0 as mau_delta from active_spans
    union all
    select mau_end + 1 as edge_date, 0 as wau_delta, -1 as mau_delta from active_spans
),

edge_days as (
    select day_series.day::date as activity_date
    from
        generate_series(
            ((select min(activity_date) from days) - {{ mau - 1 }})::timestamp,
            (select max(activity_date) from days)::timestamp,
            interval '1 day'
        ) as day_series (day)
),

daily_edges as (
    select edge_date, sum(wau_delta) as wau_delta, sum(mau_delta) as mau_delta
    from span_edges
    group by 1
),

rolling_users as (
    select
        edge_days.activity_date,
        sum(coalesce(daily_edges.wau_delta, 0)) over running_days as wau,
        sum(coalesce(daily_edges.mau_delta, 0)) over running_days as mau
    from edge_days
    left join daily_edges on edge_days.activity_date = daily_edges.edge_date
    window running_days as (order by edge_days.activity_date)
),

{%- endif %}

day_users as (
    select
        activity_date,
        count(*) filter (where is_trader) as traders,
        count(*) as active_users
    from activity
    where activity_date >= {{ from_day }}
    group by 1
),

daily_users as (
    select
        days.activity_date,
        coalesce(day_users.traders, 0) as traders,
        coalesce(day_users.active_users, 0) as active_users,
        rolling_users.wau,
        rolling_users.mau
    from days
    inner join rolling_users on days.activity_date = rolling_users.activity_date
    left join day_users on days.activity_date = day_users.activity_date
),

registrations as (
    select registered_date as activity_date, count(*) as registrations
    from {{ ref('stg_crm__users') }}
    where registered_date >= {{ from_day }}
    group by 1
),

new_traders as (
    select first_trade_date as activity_date, count(*) as new_traders
    from {{ ref('int_user_first_trades') }}
    where first_trade_date >= {{ from_day }}
    group by 1
),

transfers as (
    select
        created_date as activity_date,
        sum(amount_usd) filter (where direction = 'deposit') as deposits_usd,
        sum(amount_usd) filter (where direction = 'withdrawal') as withdrawals_usd
    from {{ ref('int_transfers_priced') }}
    where created_date >= {{ from_day }}
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
        trim_scale(daily_users.active_users::numeric / nullif(daily_users.mau, 0))::numeric
            as stickiness,
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
