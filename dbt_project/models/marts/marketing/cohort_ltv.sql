-- cumulative user fees per registration-month cohort and channel, month by month from the
-- registration month to the as-of month (fees count from registered_at on)
with as_of as (
    select max(as_of_date) as as_of_date from {{ ref('int_days') }}
),

users as (
    select
        user_id,
        registered_at,
        date_trunc('month', registered_date)::date as cohort_month,
        acquisition_channel
    from {{ ref('stg_crm__users') }}
    where registered_date <= (select as_of.as_of_date from as_of)
),

cohorts as (
    select cohort_month, acquisition_channel, count(*) as cohort_users
    from users
    group by 1, 2
),

cohort_months as (
    select
        cohorts.cohort_month,
        cohorts.acquisition_channel,
        cohorts.cohort_users,
        month_offsets.months_since_registration,
        (
            cohorts.cohort_month + make_interval(months => month_offsets.months_since_registration)
        )::date as month
    from cohorts
    cross join as_of
    cross join lateral generate_series(
        0,
        (
            (extract(year from as_of.as_of_date) - extract(year from cohorts.cohort_month)) * 12
            + extract(month from as_of.as_of_date) - extract(month from cohorts.cohort_month)
        )::integer
    ) as month_offsets (months_since_registration)
),

-- user fees from registered_at on, per month (int_user_activity_monthly keeps them apart)
monthly_fees as (
    select
        users.cohort_month,
        users.acquisition_channel,
        user_months.activity_month as month,
        sum(user_months.fees_since_registration_usd) as fees_usd
    from {{ ref('int_user_activity_monthly') }} as user_months
    inner join users on user_months.user_id = users.user_id
    group by 1, 2, 3
),

ltv as (
    select
        cohort_months.cohort_month::date as cohort_month,
        cohort_months.acquisition_channel::text as acquisition_channel,
        cohort_months.months_since_registration::integer as months_since_registration,
        cohort_months.cohort_users::bigint as cohort_users,
        coalesce(sum(monthly_fees.fees_usd) over cohort_to_date, 0)::numeric as cumulative_fees_usd,
        trim_scale(
            coalesce(sum(monthly_fees.fees_usd) over cohort_to_date, 0) / cohort_months.cohort_users
        )::numeric as ltv_usd,
        ((cohort_months.month + interval '1 month')::date - 1 <= as_of.as_of_date)::boolean
            as is_complete
    from cohort_months
    cross join as_of
    left join monthly_fees
        on cohort_months.cohort_month = monthly_fees.cohort_month
        and cohort_months.acquisition_channel = monthly_fees.acquisition_channel
        and cohort_months.month = monthly_fees.month
    window cohort_to_date as (
        partition by cohort_months.cohort_month, cohort_months.acquisition_channel
        order by cohort_months.months_since_registration
    )
)

select * from ltv
