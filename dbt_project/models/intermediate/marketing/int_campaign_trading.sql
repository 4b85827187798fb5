{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='campaign_id',
    full_refresh=(true if var('rebuild_all_campaigns', false) else none),
    on_schema_change='fail',
    pre_hook=["{{ delete_changed_campaigns() }}"],
    indexes=[{'columns': ['campaign_id'], 'unique': True}],
) }}

-- members and their trading per started campaign: participants (enrolled users) and
-- controls (registered before the start, not enrolled, not in an excluded country, in the
-- target tier on the day before the start), their volume and fees during S..E and in the n
-- days before S (campaign_performance turns them into differences-in-differences).
-- Incremental by campaign: a campaign depends on its own record and enrollments, its members'
-- registration, country and tier on S-1, and the trades of S-n..E, so a run recomputes the
-- campaigns whose window end reaches the change window (every running one), and those with a
-- new version or enrollment (var changed_campaigns); a change that reaches every campaign (a
-- user's new country, a re-delivered enrollments partition) rebuilds the table
-- (var rebuild_all_campaigns). A finished campaign is not read again.
with as_of as (
    select max(as_of_date) as as_of_date from {{ ref('int_days') }}
),

campaigns as (
    select
        campaigns.campaign_id,
        campaigns.product_line,
        campaigns.target_tier,
        campaigns.excluded_countries,
        campaigns.start_date,
        least(campaigns.end_date, as_of.as_of_date) as window_end_date,
        least(campaigns.end_date, as_of.as_of_date) - campaigns.start_date + 1 as window_days
    from {{ ref('stg_crm__campaigns') }} as campaigns
    cross join as_of
    where campaigns.start_date <= as_of.as_of_date
        {%- if is_incremental() %}
        and (
            least(campaigns.end_date, as_of.as_of_date) >= {{ window_start() }}
            or campaigns.campaign_id in {{ text_list(var('changed_campaigns', [])) }}
        )
        {%- endif %}
),

enrollments as (
    select distinct campaign_id, user_id from {{ ref('stg_crm__campaign_enrollments') }}
),

users as (
    select user_id, registered_date, country from {{ ref('stg_crm__users') }}
),

users_tiered as (
    select distinct spells.user_id, campaigns.start_date - 1 as activity_date, spells.tier
    from {{ ref('int_user_tier_spells') }} as spells
    inner join campaigns
        on campaigns.start_date - 1 between spells.valid_from and spells.valid_to
),

participants as (
    select enrollments.campaign_id, enrollments.user_id, 'participant' as member_role
    from enrollments
    inner join campaigns on enrollments.campaign_id = campaigns.campaign_id
),

controls as (
    select campaigns.campaign_id, users.user_id, 'control' as member_role
    from campaigns
    inner join users on users.registered_date < campaigns.start_date
    left join users_tiered
        on users.user_id = users_tiered.user_id
        and users_tiered.activity_date = campaigns.start_date - 1
    where not (coalesce(users.country, '') = any(campaigns.excluded_countries))
        and (campaigns.target_tier = 'all' or users_tiered.tier = campaigns.target_tier)
        and not exists (
            select 1 from enrollments
            where enrollments.campaign_id = campaigns.campaign_id
                and enrollments.user_id = users.user_id
        )
),

members as (
    select * from participants
    union all
    select * from controls
),

member_counts as (
    select
        campaign_id,
        count(*) filter (where member_role = 'participant') as participants,
        count(*) filter (where member_role = 'control') as controls
    from members
    group by 1
),

member_trading as (
    select
        members.campaign_id,
        members.member_role,
        sum(user_days.volume_usd) filter (where user_days.activity_date >= campaigns.start_date) as volume_during_usd,
        sum(user_days.volume_usd) filter (where user_days.activity_date < campaigns.start_date) as volume_pre_usd,
        sum(user_days.fees_usd) filter (where user_days.activity_date >= campaigns.start_date) as fees_during_usd,
        sum(user_days.fees_usd) filter (where user_days.activity_date < campaigns.start_date) as fees_pre_usd
    from members
    inner join campaigns on members.campaign_id = campaigns.campaign_id
    inner join {{ ref('int_user_product_daily') }} as user_days
        on members.user_id = user_days.user_id
        and user_days.activity_date between campaigns.start_date - campaigns.window_days and campaigns.window_end_date
        and (campaigns.product_line is null or user_days.product_line = campaigns.product_line)
    group by 1, 2
),

campaign_trading as (
    select
        campaigns.campaign_id::text as campaign_id,
        campaigns.window_end_date::date as window_end_date,
        campaigns.window_days::integer as window_days,
        coalesce(member_counts.participants, 0)::bigint as participants,
        coalesce(member_counts.controls, 0)::bigint as controls,
        coalesce(participant_trading.volume_pre_usd, 0)::numeric as participant_volume_pre_usd,
        coalesce(participant_trading.volume_during_usd, 0)::numeric as participant_volume_during_usd,
        coalesce(participant_trading.fees_pre_usd, 0)::numeric as participant_fees_pre_usd,
        coalesce(participant_trading.fees_during_usd, 0)::numeric as participant_fees_during_usd,
        coalesce(control_trading.volume_pre_usd, 0)::numeric as control_volume_pre_usd,
        coalesce(control_trading.volume_during_usd, 0)::numeric as control_volume_during_usd,
        coalesce(control_trading.fees_pre_usd, 0)::numeric as control_fees_pre_usd,
        coalesce(control_trading.fees_during_usd, 0)::numeric as control_fees_during_usd
    from campaigns
    left join member_counts on campaigns.campaign_id = member_counts.campaign_id
    left join member_trading as participant_trading
        on campaigns.campaign_id = participant_trading.campaign_id
        and participant_trading.member_role = 'participant'
    left join member_trading as control_trading
        on campaigns.campaign_id = control_trading.campaign_id
        and control_trading.member_role = 'control'
)

select * from campaign_trading
