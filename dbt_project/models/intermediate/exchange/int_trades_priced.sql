{{ config(
    materialized='view',
    pre_hook=["{{ assert_prices_complete('trades', build_window_start()) }}"],
) }}

-- one row per trade in the day spine, with its USD volume and fees at the quote asset's
-- price of the trade's UTC day. A view: its readers (the user x product x day rollup, the
-- risk alerts, the reconciliations) each read the days they need through the staged trades'
-- indexes, and a year of trades is not written twice. The pre-hook fails the build, naming
-- assets and days, when a price the build's days need is missing (from the first day
-- this build rebuilds)
-- the prices are those of the spine's days (int_product_day_prices): joining them keeps the
-- trades of the spine. No other filter here, so that a reader's date filter reaches the
-- staged trades' executed_date index and its estimate
with trades as (
    select * from {{ ref('stg_exchange__trades') }}
),

prices as (
    select product_id, price_date, product_line, quote_asset, usd_price
    from {{ ref('int_product_day_prices') }}
),

trades_priced as (
    select
        trades.trade_id,
        trades.product_id,
        prices.product_line,
        prices.quote_asset,
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
    inner join prices
        on trades.product_id = prices.product_id
        and trades.executed_date = prices.price_date
)

select * from trades_priced
