{{ window_config(
    'activity_date', indexes=[{'columns': ['user_id', 'product_id', 'activity_date'], 'unique': True}]
) }}
{%- set from_day = window_start() %}

-- one row per user, product and day with a trade on either side (a self-trade once, with
-- both fees): product traders, first trades per product and campaign volumes read this
-- rollup instead of every trade. Incremental by day
with user_trades as (
    select * from {{ ref('int_user_trades') }}
    where executed_date >= {{ from_day }}
),

user_product_days as (
    select
        user_id,
        product_id,
        max(product_line) as product_line,
        executed_date as activity_date,
        count(*) as trade_count,
        sum(volume_usd) as volume_usd,
        sum(fees_usd) as fees_usd
    from user_trades
    group by user_id, product_id, executed_date
)

select * from user_product_days
order by activity_date
