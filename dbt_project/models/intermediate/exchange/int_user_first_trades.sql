{{ window_config('first_trade_date', indexes=[{'columns': ['user_id'], 'unique': True}]) }}
{%- set from_day = window_start() %}

-- each user's first trade, on either side, over all products. Its day comes from the user x
-- product x day rollup, the trade from that day's trades of the user (a lookup per user,
-- not a sort of every user's trades). Incremental: a first trade before the window cannot
-- change, so a run drops the later ones and finds the first trade of every user left
-- without one among the window's days
with first_days as (
    select user_product_days.user_id, min(user_product_days.activity_date) as first_trade_date
    from {{ ref('int_user_product_daily') }} as user_product_days
    where user_product_days.activity_date >= {{ from_day }}
    {%- if is_incremental() %}
        and not exists (
            select 1 from {{ this }} as known where known.user_id = user_product_days.user_id
        )
    {%- endif %}
    group by 1
),

trades as (
    select trade_id, executed_at, executed_date, maker_user_id, taker_user_id
    from {{ ref('int_trades_priced') }}
    where executed_date >= {{ from_day }}
),

first_day_trades as (
    select first_days.user_id, trades.trade_id, trades.executed_at, first_days.first_trade_date
    from first_days
    inner join trades
        on trades.executed_date = first_days.first_trade_date
        and trades.maker_user_id = first_days.user_id
    union all
    select first_days.user_id, trades.trade_id, trades.executed_at, first_days.first_trade_date
    from first_days
    inner join trades
        on trades.executed_date = first_days.first_trade_date
        and trades.taker_user_id = first_days.user_id
),

first_trades as (
    select distinct on (user_id)
        user_id,
        trade_id as first_trade_id,
        executed_at as first_trade_at,
        first_trade_date
    from first_day_trades
    order by user_id, executed_at, trade_id
)

select * from first_trades
order by first_trade_date
