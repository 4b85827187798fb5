{{ window_config(
    'trade_week', grain='week', indexes=[{'columns': ['trade_week', 'user_id'], 'unique': True}]
) }}
{%- set from_week = window_start('week') %}

-- one row per user and ISO week (Monday) with at least one trade, for retention; incremental
-- by week
with trading_days as (
    select user_id, activity_date
    from {{ ref('int_user_activity_daily') }}
    where is_trader and activity_date >= {{ from_week }}
),

trading_weeks as (
    select distinct
        user_id,
        date_trunc('week', activity_date)::date as trade_week
    from trading_days
)

select * from trading_weeks
order by trade_week
