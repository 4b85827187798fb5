{{ window_config(
    'executed_date',
    indexes=[{'columns': ['maker_user_id']}, {'columns': ['taker_user_id']}],
    pre_hooks=["{{ assert_prices_complete('trades', window_start()) }}"],
) }}
{%- set from_day = window_start() %}

-- one row per trade in the day spine, with its USD volume and fees at the quote asset's
-- price of the trade's UTC day
with days as (
    select activity_date from {{ ref('int_days') }}
    where activity_date >= {{ from_day }}
),

trades as (
    select trades.*
    from {{ ref('stg_exchange__trades') }} as trades
    inner join days on trades.executed_date = days.activity_date
    where trades.executed_date >= {{ from_day }}
),

products as (
    select product_id, product_line, quote_asset
    from {{ ref('stg_exchange__products') }}
),

prices as (
    select asset, price_date, usd_price
    from {{ ref('stg_exchange__asset_prices') }}
),

trades_priced as (
    select
        trades.trade_id,
        trades.product_id,
        products.product_line,
        products.quote_asset,
        trades.executed_at,
        trades.executed_date,
        trades.maker_user_id,
        trades.taker_user_id,
        trades.is_self_trade,
        trades.quote_amount,
        prices.usd_price,
        trades.quote_amount * prices.usd_price as volume_usd,
        trades.maker_fee * prices.usd_price as maker_fee_usd,
        trades.taker_fee * prices.usd_price as taker_fee_usd,
        (trades.maker_fee + trades.taker_fee) * prices.usd_price as fees_usd
    from trades
    inner join products on trades.product_id = products.product_id
    inner join prices
        on products.quote_asset = prices.asset
        and trades.executed_date = prices.price_date
)

select * from trades_priced
order by executed_date
