-- each user's first trade, on either side, over all products
with user_trades as (
    select user_id, trade_id, executed_at, executed_date
    from {{ ref('int_user_trades') }}
),

first_trades as (
    select distinct on (user_id)
        user_id,
        trade_id as first_trade_id,
        executed_at as first_trade_at,
        executed_date as first_trade_date
    from user_trades
    order by user_id, executed_at, trade_id
)

select * from first_trades
