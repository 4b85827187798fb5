{{ config(materialized='table') }}

-- one row per product and day of the spine with its quote asset's USD price that day (none
-- where the price is missing: int_trades_priced's pre-hook names those). Small (products x
-- days) and a table, so that PostgreSQL knows its size: joined as views, the products and
-- prices were estimated at a few rows and the trades read once per product
with days as (
    select activity_date from {{ ref('int_days') }}
),

products as (
    select product_id, product_line, quote_asset
    from {{ ref('stg_exchange__products') }}
),

prices as (
    select asset, price_date, usd_price
    from {{ ref('stg_exchange__asset_prices') }}
)

select
    products.product_id,
    days.activity_date as price_date,
    products.product_line,
    products.quote_asset,
    prices.usd_price
from products
cross join days
inner join prices
    on products.quote_asset = prices.asset
    and days.activity_date = prices.price_date
