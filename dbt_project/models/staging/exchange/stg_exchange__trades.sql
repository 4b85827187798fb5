{{ staged_dedup_config(
    'exchange', 'trades', ['trade_id'], 'executed_date', "(executed_at at time zone 'UTC')::date"
) }}

-- one row per trade_id; an incremental table (macros/staged_dedup.sql): a day's run stages
-- the day's rows, not the whole history
with trades as (
    {{ staged_dedup('exchange', 'trades', ['trade_id']) }}
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
    maker_user_id = taker_user_id as is_self_trade,
    _load_id,
    _dt,
    _file,
    _line
from trades
order by executed_date
