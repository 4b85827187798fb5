{{ staged_config(
    unique_key='trade_id',
    indexes=[
        {'columns': ['trade_id'], 'unique': True},
        {'columns': ['executed_date']},
        {'columns': ['maker_user_id']},
        {'columns': ['taker_user_id']},
    ],
) }}
{%- set columns = 'trade_id, product_id, executed_at, price, quantity, quote_amount, taker_side,'
    ~ ' maker_user_id, taker_user_id, maker_fee, taker_fee, _load_id, _dt, _file, _line' %}

-- one row per trade_id: the later dt, then the later file name, then the later line wins
-- (SOURCES.md). An incremental table, so that a day's build stages the day's rows instead of
-- sorting every trade ever loaded: an incremental run weighs the rows loaded since the last
-- build against the versions already staged for their keys (delete+insert by trade_id). A
-- re-delivered trades partition takes rows away, so the build restages the table whole
-- (var restage, exops.transform.window). Indexed for the day models (executed_date) and the
-- risk alerts of relinked users (maker_user_id, taker_user_id)
{{ staged_candidates(source('exchange', 'trades'), columns, ['trade_id'], 'exchange_trades') }},

trades as (
    {{ dedup('candidates', ['trade_id']) }}
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
