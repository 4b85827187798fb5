{{ window_config(
    'event_date', pre_hooks=["{{ assert_prices_complete('wealth_events', window_start()) }}"]
) }}
{%- set from_day = window_start() %}

-- wealth subscriptions and redemptions in the day spine, in USD at the event asset's price
with days as (
    select activity_date from {{ ref('int_days') }}
    where activity_date >= {{ from_day }}
),

wealth_events as (
    select wealth_events.*
    from {{ ref('stg_exchange__wealth_events') }} as wealth_events
    inner join days on wealth_events.event_date = days.activity_date
),

prices as (
    select asset, price_date, usd_price from {{ ref('stg_exchange__asset_prices') }}
),

wealth_events_priced as (
    select
        wealth_events.event_id,
        wealth_events.user_id,
        wealth_events.product_id,
        wealth_events.event_type,
        wealth_events.asset,
        wealth_events.amount,
        wealth_events.event_at,
        wealth_events.event_date,
        wealth_events.amount * prices.usd_price as amount_usd
    from wealth_events
    inner join prices
        on wealth_events.asset = prices.asset
        and wealth_events.event_date = prices.price_date
)

select * from wealth_events_priced
order by event_date
