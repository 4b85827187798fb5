{{ config(materialized='view') }}

-- per started campaign and day of its windows (the n days before S, and S..E, n = E - S + 1),
-- its participants' and controls' volume and fees on the campaign's line. Controls are the
-- base users neither excluded by country nor enrolled, so their trading is the base's, less
-- its excluded users' and its enrolled users', plus those both excluded and enrolled (taken
-- away twice). Each of the three day models is recomputed by the changes that move it only
with base_days as (
    select campaign_id, activity_date, volume_usd, fees_usd
    from {{ ref('int_campaign_base_daily') }}
),

excluded_days as (
    select
        campaign_id,
        activity_date,
        volume_usd,
        fees_usd,
        enrolled_volume_usd,
        enrolled_fees_usd
    from {{ ref('int_campaign_excluded_daily') }}
),

participant_days as (
    select
        campaign_id,
        activity_date,
        volume_usd,
        fees_usd,
        in_base_volume_usd,
        in_base_fees_usd
    from {{ ref('int_campaign_participant_daily') }}
),

campaign_days as (
    select
        base_days.campaign_id,
        base_days.activity_date,
        participant_days.volume_usd as participant_volume_usd,
        participant_days.fees_usd as participant_fees_usd,
        base_days.volume_usd
        - excluded_days.volume_usd
        - participant_days.in_base_volume_usd
        + excluded_days.enrolled_volume_usd as control_volume_usd,
        base_days.fees_usd
        - excluded_days.fees_usd
        - participant_days.in_base_fees_usd
        + excluded_days.enrolled_fees_usd as control_fees_usd
    from base_days
    inner join excluded_days
        on base_days.campaign_id = excluded_days.campaign_id
        and base_days.activity_date = excluded_days.activity_date
    inner join participant_days
        on base_days.campaign_id = participant_days.campaign_id
        and base_days.activity_date = participant_days.activity_date
)

select * from campaign_days
