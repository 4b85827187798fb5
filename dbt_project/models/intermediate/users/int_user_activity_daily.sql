{{ window_config('activity_date', indexes=[{'columns': ['user_id', 'activity_date'], 'unique': True}]) }}
{%- set from_day = window_start() %}

-- one row per user and day with any trade, wealth event or completed transfer; the trading
-- part sums the user x product x day rollup
with user_trades as (
    select
        user_id,
        activity_date,
        sum(trade_count) as trade_count,
        sum(self_trade_count) as self_trade_count,
        sum(self_trade_volume_usd) as self_trade_volume_usd,
        sum(volume_usd) as volume_usd,
        sum(fees_usd) as fees_usd,
        sum(fees_since_registration_usd) as fees_since_registration_usd
    from {{ ref('int_user_product_daily') }}
    where activity_date >= {{ from_day }}
    group by 1, 2
),

wealth_events as (
    select
        user_id,
        event_date as activity_date,
        count(*) as wealth_event_count
    from {{ ref('int_wealth_events_priced') }}
    where event_date >= {{ from_day }}
    group by 1, 2
),

transfers as (
    select
        user_id,
        created_date as activity_date,
        sum(amount_usd) filter (where direction = 'deposit') as deposits_usd,
        sum(amount_usd) filter (where direction = 'withdrawal') as withdrawals_usd
    from {{ ref('int_transfers_priced') }}
    where created_date >= {{ from_day }}
    group by 1, 2
),

user_days as (
    select user_id, activity_date from user_trades
    union
    select user_id, activity_date from wealth_events
    union
    select user_id, activity_date from transfers
),

user_activity as (
    select
        user_days.user_id,
        user_days.activity_date,
        coalesce(user_trades.trade_count, 0) as trade_count,
        coalesce(user_trades.self_trade_count, 0) as self_trade_count,
        coalesce(user_trades.self_trade_volume_usd, 0) as self_trade_volume_usd,
        coalesce(user_trades.volume_usd, 0) as volume_usd,
        coalesce(user_trades.fees_usd, 0) as fees_usd,
        coalesce(user_trades.fees_since_registration_usd, 0) as fees_since_registration_usd,
        coalesce(wealth_events.wealth_event_count, 0) as wealth_event_count,
        coalesce(transfers.deposits_usd, 0) as deposits_usd,
        coalesce(transfers.withdrawals_usd, 0) as withdrawals_usd,
        user_trades.user_id is not null as is_trader,
        user_trades.user_id is not null or wealth_events.user_id is not null as is_active
    from user_days
    left join user_trades using (user_id, activity_date)
    left join wealth_events using (user_id, activity_date)
    left join transfers using (user_id, activity_date)
)

select * from user_activity
order by activity_date
