-- weekly trading retention by cohort week of the first trade, channel (and 'all') and
-- week number 0..retention_weeks; a row exists once its week has ended by the as-of date
with as_of as (
    select max(as_of_date) as as_of_date from {{ ref('int_days') }}
),

cohort_users as (
    select
        first_trades.user_id,
        date_trunc('week', first_trades.first_trade_date)::date as cohort_week,
        users.acquisition_channel
    from {{ ref('int_user_first_trades') }} as first_trades
    inner join {{ ref('stg_crm__users') }} as users on first_trades.user_id = users.user_id
),

cohort_users_with_all as (
    select user_id, cohort_week, acquisition_channel from cohort_users
    union all
    select user_id, cohort_week, 'all' as acquisition_channel from cohort_users
),

trading_weeks as (
    select user_id, trade_week from {{ ref('int_user_trading_weeks') }}
),

cohort_sizes as (
    select cohort_week, acquisition_channel, count(*) as cohort_users
    from cohort_users_with_all
    group by 1, 2
),

cohort_weeks as (
    select
        cohort_sizes.cohort_week,
        cohort_sizes.acquisition_channel,
        cohort_sizes.cohort_users,
        week_numbers.week_number
    from cohort_sizes
    cross join generate_series(0, {{ var('retention_weeks') }}) as week_numbers (week_number)
    cross join as_of
    where cohort_sizes.cohort_week + 7 * week_numbers.week_number + 6 <= as_of.as_of_date
),

retained as (
    select
        cohort.cohort_week,
        cohort.acquisition_channel,
        (trading_weeks.trade_week - cohort.cohort_week) / 7 as week_number,
        count(*) as retained_users
    from cohort_users_with_all as cohort
    inner join trading_weeks
        on cohort.user_id = trading_weeks.user_id
        and cohort.cohort_week <= trading_weeks.trade_week
        -- weeks past the last week number have no row to count in
        and trading_weeks.trade_week <= cohort.cohort_week + 7 * {{ var('retention_weeks') }}
    group by 1, 2, 3
),

retention as (
    select
        cohort_weeks.cohort_week::date as cohort_week,
        cohort_weeks.acquisition_channel::text as acquisition_channel,
        cohort_weeks.week_number::integer as week_number,
        cohort_weeks.cohort_users::bigint as cohort_users,
        coalesce(retained.retained_users, 0)::bigint as retained_users,
        trim_scale(
            coalesce(retained.retained_users, 0)::numeric / cohort_weeks.cohort_users
        )::numeric as retention_rate
    from cohort_weeks
    left join retained
        on cohort_weeks.cohort_week = retained.cohort_week
        and cohort_weeks.acquisition_channel = retained.acquisition_channel
        and cohort_weeks.week_number = retained.week_number
)

select * from retention
