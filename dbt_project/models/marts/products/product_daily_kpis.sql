{{ window_config('activity_date') }}
{%- set from_day = window_start() %}

with product_days as (
    select product_id, product_line, activity_date, lifecycle_stage
    from {{ ref('int_products_staged_daily') }}
    where activity_date >= {{ from_day }}
),

-- from the user x product x day rollup: each trade once at its maker's row, each trader once
trades as (
    select
        product_id,
        activity_date,
        sum(maker_trade_count) as trade_count,
        sum(maker_volume_usd) as volume_usd,
        sum(fees_usd) as fees_usd,
        count(*) as traders
    from {{ ref('int_user_product_daily') }}
    where activity_date >= {{ from_day }}
    group by 1, 2
),

new_traders as (
    select product_id, first_trade_date as activity_date, count(*) as new_traders
    from {{ ref('int_user_product_first_trades') }}
    where first_trade_date >= {{ from_day }}
    group by 1, 2
),

wealth_events as (
    select
        product_id,
        event_date as activity_date,
        sum(amount_usd) filter (where event_type = 'subscribe') as subscribe_usd,
        sum(amount_usd) filter (where event_type = 'redeem') as redeem_usd,
        count(distinct user_id) filter (where event_type = 'subscribe') as subscribers
    from {{ ref('int_wealth_events_priced') }}
    where event_date >= {{ from_day }}
    group by 1, 2
),

product_kpis as (
    select
        product_days.product_id::text as product_id,
        product_days.product_line::text as product_line,
        product_days.activity_date::date as activity_date,
        product_days.lifecycle_stage::text as lifecycle_stage,
        coalesce(trades.trade_count, 0)::bigint as trade_count,
        coalesce(trades.volume_usd, 0)::numeric as volume_usd,
        coalesce(trades.fees_usd, 0)::numeric as fees_usd,
        coalesce(trades.traders, 0)::bigint as traders,
        coalesce(new_traders.new_traders, 0)::bigint as new_traders,
        coalesce(wealth_events.subscribe_usd, 0)::numeric as subscribe_usd,
        coalesce(wealth_events.redeem_usd, 0)::numeric as redeem_usd,
        coalesce(wealth_events.subscribers, 0)::bigint as subscribers
    from product_days
    left join trades using (product_id, activity_date)
    left join new_traders using (product_id, activity_date)
    left join wealth_events using (product_id, activity_date)
)

select * from product_kpis
