{{ config(
    materialized='incremental',
    incremental_strategy='append',
    full_refresh=(true if window_var('rebuild_all_campaigns', false) else none),
    on_schema_change='fail',
    pre_hook=["{{ delete_campaign_days(with_enrollments=false) }}", "{{ prefer_hash_joins() }}"],
    indexes=[{'columns': ['campaign_id', 'activity_date'], 'unique': True}],
) }}

-- depends_on: {{ ref('stg_crm__campaigns') }}, {{ ref('int_campaign_windows') }}
-- per started campaign and day of its windows, the volume and fees on the campaign's line of
-- its eligible population (int_campaign_members.is_eligible: the users its controls are drawn
-- from, enrolled or not). Who enrolled does not change it, so enrollments arriving during a
-- campaign leave its days alone: a run computes the change window's days, the day the pre
-- window gained, and every day of a campaign whose eligibility was recomputed
with missing_days as (
    {{ missing_campaign_days() }}
),

eligible as (
    select campaign_id, user_id
    from {{ ref('int_campaign_members') }}
    where is_eligible
        and campaign_id in (select missing_days.campaign_id from missing_days)
),

-- the rollup's rows of those users on the missing days, each (user, day) read once whatever
-- the number of campaigns that need that day (then joined to each campaign's users)
user_days as (
    select user_id, activity_date, product_line, volume_usd, fees_usd
    from {{ ref('int_user_product_daily') }}
    where activity_date in (select missing_days.activity_date from missing_days)
        and user_id in (select eligible.user_id from eligible)
),

eligible_trading as (
    select
        missing_days.campaign_id,
        missing_days.activity_date,
        sum(user_days.volume_usd) as volume_usd,
        sum(user_days.fees_usd) as fees_usd
    from user_days
    inner join eligible on user_days.user_id = eligible.user_id
    inner join missing_days
        on eligible.campaign_id = missing_days.campaign_id
        and user_days.activity_date = missing_days.activity_date
    where missing_days.product_line is null or missing_days.product_line = user_days.product_line
    group by 1, 2
),

campaign_days as (
    select
        missing_days.campaign_id::text as campaign_id,
        missing_days.activity_date::date as activity_date,
        coalesce(eligible_trading.volume_usd, 0)::numeric as eligible_volume_usd,
        coalesce(eligible_trading.fees_usd, 0)::numeric as eligible_fees_usd
    from missing_days
    left join eligible_trading
        on missing_days.campaign_id = eligible_trading.campaign_id
        and missing_days.activity_date = eligible_trading.activity_date
)

select * from campaign_days
order by activity_date
