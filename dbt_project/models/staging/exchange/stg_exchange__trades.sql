with trades as (
    {{ dedup(source('exchange', 'trades'), ['trade_id']) }}
)

select
    trade_id,
    product_id,
    executed_at,
    {{ utc_date('executed_at') }} as executed_date,
    price,
    quantity,
    quote_amount,
    taker_side,
    maker_user_id,
    taker_user_id,
    maker_fee,
    taker_fee,
    maker_user_id = taker_user_id as is_self_trade
from trades
