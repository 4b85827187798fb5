{{ window_config('activity_date', indexes=[{'columns': ['user_id', 'activity_date'], 'unique': True}]) }}
{%- set from_day = window_start() %}

-- one row per user and day with any trade, wealth event or completed transfer; fees also
-- counted from the user's registered_at on (cohort LTV)
with users as (
    select user_id, registered_at from {{ ref('stg_crm__users') }}
),

user_trades as (
    select
        user_trades.user_id,
        user_trades.executed_date as activity_date,
        count(*) as trade_count,
        count(*) filter (where user_trades.is_self_trade) as self_trade_count,
        coalesce(sum(user_trades.volume_usd) filter (where user_trades.is_self_trade), 0)
            as self_trade_volume_usd,
        sum(user_trades.volume_usd) as volume_usd,
        sum(user_trades.fees_usd) as fees_usd,
        coalesce(sum(user_trades.fees_usd) filter (where user_trades.executed_at >= users.registered_at), 0)
            as fees_since_registration_usd
    from {{ ref('int_user_trades') }} as user_trades
    left join users on user_trades.user_id = users.user_id
    where user_trades.executed_date >= {{ from_day }}
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
