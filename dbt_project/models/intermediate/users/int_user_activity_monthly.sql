{{ window_config(
    'activity_month', grain='month',
    indexes=[{'columns': ['activity_month', 'user_id'], 'unique': True}]
) }}
{%- set from_month = window_start('month') %}

-- one row per user and calendar month with any activity: the history-wide marts (cohort
-- LTV, lifetime totals) read this compact rollup instead of every trade. Incremental by
-- month: a run rebuilds the months from the dirty-from day's month on
with activity as (
    select * from {{ ref('int_user_activity_daily') }}
    where activity_date >= {{ from_month }}
),

monthly as (
    select
        user_id,
        date_trunc('month', activity_date)::date as activity_month,
        sum(trade_count) as trade_count,
        sum(volume_usd) as volume_usd,
        sum(fees_usd) as fees_usd,
        sum(fees_since_registration_usd) as fees_since_registration_usd,
        count(*) filter (where is_active) as active_days,
        max(activity_date) filter (where is_active) as last_active_date
    from activity
    group by 1, 2
)

select * from monthly
order by activity_month
