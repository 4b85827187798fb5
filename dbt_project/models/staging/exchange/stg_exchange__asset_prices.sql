with asset_prices as (
    {{ dedup(source('exchange', 'asset_prices'), ['asset', 'price_date']) }}
)

select
    asset,
    price_date,
    usd_price
from asset_prices
