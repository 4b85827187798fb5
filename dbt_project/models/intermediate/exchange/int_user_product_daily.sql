{{ window_config(
    'activity_date',
    indexes=[{'columns': ['user_id', 'product_id', 'activity_date'], 'unique': True}],
    pre_hooks=["{{ prefer_sorted_aggregation() }}"],
    user_column='user_id',
) }}
{%- set from_day = window_start() %}

-- one row per user, product and day with a trade on either side (a self-trade once, with
-- both fees): user activity, product traders, first trades and campaign volumes read this
-- rollup instead of every trade (the only aggregation over all users' trades); the exchange's
-- and the products' trade counts and volumes sum its maker rows (each trade once). Fees also
-- counted from the user's registered_at on (cohort LTV). Incremental by day and, for late
-- records, by user (window_config's user_column: a day's late trades rebuild their users' rows)
with users as (
    select user_id, registered_at from {{ ref('stg_crm__users') }}
),

user_trades as (
    select user_trades.* from {{ ref('int_user_trades') }} as user_trades
    {{- user_window_join('user_trades.user_id') }}
    where user_trades.executed_date >= {{ from_day }}
        and {{ user_window_filter('user_trades.executed_date') }}
),

user_product_days as (
    select
        user_trades.user_id,
        user_trades.product_id,
        max(user_trades.product_line) as product_line,
        user_trades.executed_date as activity_date,
        count(*) as trade_count,
        count(*) filter (where user_trades.is_maker) as maker_trade_count,
        coalesce(sum(user_trades.volume_usd) filter (where user_trades.is_maker), 0)
            as maker_volume_usd,
        min(user_trades.executed_at) as first_executed_at,
        count(*) filter (where user_trades.is_self_trade) as self_trade_count,
        coalesce(sum(user_trades.volume_usd) filter (where user_trades.is_self_trade), 0)
            as self_trade_volume_usd,
        sum(user_trades.volume_usd) as volume_usd,
        sum(user_trades.fees_usd) as fees_usd,
        coalesce(
            sum(user_trades.fees_usd) filter (where user_trades.executed_at >= users.registered_at),
            0
        )
            as fees_since_registration_usd
    from user_trades
    left join users on user_trades.user_id = users.user_id
    -- day first: aggregated in sorted order (prefer_sorted_aggregation), the rows come out in
    -- the day order the table is written in, without a second sort
    group by user_trades.executed_date, user_trades.user_id, user_trades.product_id
)

select * from user_product_days
order by activity_date
