-- one row per product: attributes from the latest snapshot that contains it
with products as (
    {{ dedup(source('exchange', 'products'), ['product_id']) }}
)

select
    product_id,
    product_line,
    base_asset,
    quote_asset,
    display_name,
    _dt as snapshot_date
from products
