{{ config(materialized='view') }}

-- one row per trade and user on it: the maker and the taker, or the user once for a
-- self-trade, who then pays both fees; is_maker marks the maker's row (each trade once)
-- not materialized: both sides read it, and a reader's date filter must reach the table's
-- index (a materialized CTE would copy every trade first)
with trades as not materialized (
    select * from {{ ref('int_trades_priced') }}
),

maker_sides as (
    select
        trade_id,
        maker_user_id as user_id,
        product_id,
        product_line,
        executed_at,
        executed_date,
        is_self_trade,
        true as is_maker,
        volume_usd,
        case when is_self_trade then fees_usd else maker_fee_usd end as fees_usd
    from trades
),

taker_sides as (
    select
        trade_id,
        taker_user_id as user_id,
        product_id,
        product_line,
        executed_at,
        executed_date,
        is_self_trade,
        false as is_maker,
        volume_usd,
        taker_fee_usd as fees_usd
    from trades
    where not is_self_trade
),

user_trades as (
    select * from maker_sides
    union all
    select * from taker_sides
)

select * from user_trades
