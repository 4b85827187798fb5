{{ config(
    materialized='incremental',
    incremental_strategy='append',
    full_refresh=(true if window_var('rebuild_all_campaigns', false) else none),
    on_schema_change='fail',
    pre_hook=["{{ delete_campaign_days(with_enrollments=true) }}"],
    indexes=[{'columns': ['campaign_id', 'activity_date'], 'unique': True}],
) }}

-- depends_on: {{ ref('stg_crm__campaigns') }}, {{ ref('int_campaign_windows') }}
-- per started campaign and day of its windows (the n days before S, and S..E, n = E - S + 1),
-- its participants' and controls' volume and fees on the campaign's line. Controls are the
-- eligible users who did not enroll, so their trading is the eligible population's
-- (int_campaign_eligible_daily) less the eligible participants': enrollments arriving during a
-- campaign recompute its days from its participants' trading only. A run computes the days of
-- each campaign it has no row for: the change window's days, the day the pre window gained,
-- and every day of a campaign whose members changed
with missing_days as (
    {{ missing_campaign_days() }}
),

participants as (
    select campaign_id, user_id, is_eligible
    from {{ ref('int_campaign_members') }}
    where member_role = 'participant'
        and campaign_id in (select missing_days.campaign_id from missing_days)
),

user_days as (
    select user_id, activity_date, product_line, volume_usd, fees_usd
    from {{ ref('int_user_product_daily') }}
    where activity_date in (select missing_days.activity_date from missing_days)
        and user_id in (select participants.user_id from participants)
),

participant_trading as (
    select
        missing_days.campaign_id,
        missing_days.activity_date,
        sum(user_days.volume_usd) as volume_usd,
        sum(user_days.fees_usd) as fees_usd,
        sum(user_days.volume_usd) filter (where participants.is_eligible) as eligible_volume_usd,
        sum(user_days.fees_usd) filter (where participants.is_eligible) as eligible_fees_usd
    from user_days
    inner join participants on user_days.user_id = participants.user_id
    inner join missing_days
        on participants.campaign_id = missing_days.campaign_id
        and user_days.activity_date = missing_days.activity_date
    where missing_days.product_line is null or missing_days.product_line = user_days.product_line
    group by 1, 2
),

campaign_days as (
    select
        missing_days.campaign_id::text as campaign_id,
        missing_days.activity_date::date as activity_date,
        coalesce(participant_trading.volume_usd, 0)::numeric as participant_volume_usd,
        coalesce(participant_trading.fees_usd, 0)::numeric as participant_fees_usd,
        (
            eligible_days.eligible_volume_usd - coalesce(participant_trading.eligible_volume_usd, 0)
        )::numeric as control_volume_usd,
        (
            eligible_days.eligible_fees_usd - coalesce(participant_trading.eligible_fees_usd, 0)
        )::numeric as control_fees_usd
    from missing_days
    inner join {{ ref('int_campaign_eligible_daily') }} as eligible_days
        on missing_days.campaign_id = eligible_days.campaign_id
        and missing_days.activity_date = eligible_days.activity_date
    left join participant_trading
        on missing_days.campaign_id = participant_trading.campaign_id
        and missing_days.activity_date = participant_trading.activity_date
)

select * from campaign_days
order by activity_date
