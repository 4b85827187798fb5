-- each user's first trade on each product, on either side
with user_trades as (
    select user_id, product_id, executed_date
    from {{ ref('int_user_trades') }}
),

first_trades as (
    select
        user_id,
        product_id,
        min(executed_date) as first_trade_date
    from user_trades
    group by 1, 2
)

select * from first_trades
