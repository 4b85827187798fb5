{{ window_config('first_trade_date', indexes=[{'columns': ['user_id'], 'unique': True}]) }}
{%- set from_day = window_start() %}

-- each user's first trade, on either side, over all products: the earliest trade of the user
-- x product x day rollup. Incremental: a first trade before the window cannot change, so a
-- run drops the later ones and finds the first trade of every user left without one among
-- the window's days
with first_trades as (
    select
        user_product_days.user_id,
        min(user_product_days.first_executed_at) as first_trade_at,
        min(user_product_days.activity_date) as first_trade_date
    from {{ ref('int_user_product_daily') }} as user_product_days
    where user_product_days.activity_date >= {{ from_day }}
    {%- if is_incremental() %}
        and not exists (
            select 1 from {{ this }} as known where known.user_id = user_product_days.user_id
        )
    {%- endif %}
    group by 1
)

select * from first_trades
order by first_trade_date
