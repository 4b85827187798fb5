{{ config(
    materialized='incremental',
    incremental_strategy='append',
    full_refresh=(true if window_var('rebuild_all_campaigns', false) else none),
    on_schema_change='fail',
    pre_hook=["{{ delete_campaign_days() }}", "{{ prefer_hash_joins() }}"],
    indexes=[{'columns': ['campaign_id', 'activity_date'], 'unique': True}],
) }}

-- depends_on: {{ ref('stg_crm__campaigns') }}
-- per started campaign and day of its windows (the n days before S, and S..E, n = E - S + 1),
-- its participants' and controls' volume and fees on the campaign's line. A running
-- campaign's windows grow a day at a time at both ends (E moves on, and so does S - n), so a
-- run computes only the days of each campaign it has no row for: the change window's days
-- (deleted first), the day the pre window gained, and every day of a campaign whose members
-- were recomputed (int_campaign_members)
with campaigns as (
    select campaign_id, product_line, pre_start_date, window_end_date
    from {{ ref('int_campaign_windows') }}
),

needed_days as (
    select campaigns.campaign_id, day_series.day::date as activity_date
    from campaigns
    cross join lateral generate_series(
        campaigns.pre_start_date::timestamp,
        campaigns.window_end_date::timestamp,
        interval '1 day'
    ) as day_series (day)
),

missing_days as (
    select needed_days.campaign_id, needed_days.activity_date
    from needed_days
    {%- if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as known
        where known.campaign_id = needed_days.campaign_id
            and known.activity_date = needed_days.activity_date
    )
    {%- endif %}
),

members as (
    select campaign_id, user_id, member_role
    from {{ ref('int_campaign_members') }}
    where campaign_id in (select missing_days.campaign_id from missing_days)
),

-- the rollup's rows of the members on the missing days, each (user, day) read once whatever
-- the number of campaigns that need that day (then joined to each campaign's members)
user_days as (
    select user_id, activity_date, product_line, volume_usd, fees_usd
    from {{ ref('int_user_product_daily') }}
    where activity_date in (select missing_days.activity_date from missing_days)
        and user_id in (select members.user_id from members)
),

member_days as (
    select
        members.campaign_id,
        members.member_role,
        user_days.activity_date,
        user_days.product_line,
        user_days.volume_usd,
        user_days.fees_usd
    from user_days
    inner join members on user_days.user_id = members.user_id
),

member_trading as (
    select
        missing_days.campaign_id,
        missing_days.activity_date,
        member_days.member_role,
        sum(member_days.volume_usd) as volume_usd,
        sum(member_days.fees_usd) as fees_usd
    from member_days
    inner join missing_days
        on member_days.campaign_id = missing_days.campaign_id
        and member_days.activity_date = missing_days.activity_date
    inner join campaigns on missing_days.campaign_id = campaigns.campaign_id
    where campaigns.product_line is null or campaigns.product_line = member_days.product_line
    group by 1, 2, 3
),

campaign_days as (
    select
        missing_days.campaign_id::text as campaign_id,
        missing_days.activity_date::date as activity_date,
        coalesce(participants.volume_usd, 0)::numeric as participant_volume_usd,
        coalesce(participants.fees_usd, 0)::numeric as participant_fees_usd,
        coalesce(controls.volume_usd, 0)::numeric as control_volume_usd,
        coalesce(controls.fees_usd, 0)::numeric as control_fees_usd
    from missing_days
    left join member_trading as participants
        on missing_days.campaign_id = participants.campaign_id
        and missing_days.activity_date = participants.activity_date
        and participants.member_role = 'participant'
    left join member_trading as controls
        on missing_days.campaign_id = controls.campaign_id
        and missing_days.activity_date = controls.activity_date
        and controls.member_role = 'control'
)

select * from campaign_days
order by activity_date
