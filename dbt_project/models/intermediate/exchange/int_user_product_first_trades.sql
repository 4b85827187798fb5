{{ window_config(
    'first_trade_date', indexes=[{'columns': ['user_id', 'product_id'], 'unique': True}]
) }}
{%- set from_day = window_start() %}

-- each user's first trade day on each product, on either side; incremental like
-- int_user_first_trades
with user_trades as (
    select user_id, product_id, activity_date as executed_date
    from {{ ref('int_user_product_daily') }}
    where activity_date >= {{ from_day }}
),

first_trades as (
    select
        user_id,
        product_id,
        min(executed_date) as first_trade_date
    from user_trades
    {% if is_incremental() -%}
    where not exists (
        select 1 from {{ this }} as known
        where known.user_id = user_trades.user_id and known.product_id = user_trades.product_id
    )
    {%- endif %}
    group by 1, 2
)

select * from first_trades
order by first_trade_date
