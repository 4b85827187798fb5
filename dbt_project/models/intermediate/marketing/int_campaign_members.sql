{{ config(
    materialized='incremental',
    incremental_strategy='append',
    full_refresh=(true if window_var('rebuild_all_campaigns', false) else none),
    on_schema_change='fail',
    pre_hook=["{{ delete_recomputed_campaigns() }}"],
    indexes=[{'columns': ['campaign_id', 'user_id'], 'unique': True}],
) }}

-- depends_on: {{ ref('stg_crm__campaigns') }}
-- the members of each started campaign: participants (enrolled users) and controls (its
-- eligible users who did not enroll); is_eligible marks the eligible population (registered
-- before the start S, latest country not excluded, in the target tier on S-1), participants
-- included. It depends on data up to S-1 only, so a run recomputes the campaigns whose S-1
-- falls in the change window and those whose own record or enrollments changed, or that
-- exclude a country a user moved into or out of (vars changed_campaigns,
-- enrolled_campaigns); a re-delivered enrollments partition rebuilds the table (var
-- rebuild_all_campaigns)
with campaigns as (
    select campaign_id, target_tier, excluded_countries, start_date
    from {{ ref('int_campaign_windows') }}
    {%- if is_incremental() %}
    where campaign_id in ({{ campaigns_to_recompute(with_enrollments=true) }})
    {%- endif %}
),

enrollments as (
    select distinct enrollments.campaign_id, enrollments.user_id
    from {{ ref('stg_crm__campaign_enrollments') }} as enrollments
    inner join campaigns on enrollments.campaign_id = campaigns.campaign_id
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

eligible as (
    select campaigns.campaign_id, users.user_id
    from campaigns
    inner join users on campaigns.start_date > users.registered_date
    left join users_tiered
        on users.user_id = users_tiered.user_id
        and users_tiered.activity_date = campaigns.start_date - 1
    where not (coalesce(users.country, '') = any(campaigns.excluded_countries))
        and (campaigns.target_tier = 'all' or users_tiered.tier = campaigns.target_tier)
),

members as (
    select
        coalesce(enrollments.campaign_id, eligible.campaign_id)::text as campaign_id,
        coalesce(enrollments.user_id, eligible.user_id)::text as user_id,
        (case when enrollments.user_id is null then 'control' else 'participant' end)::text
            as member_role,
        (eligible.user_id is not null)::boolean as is_eligible
    from enrollments
    full outer join eligible
        on enrollments.campaign_id = eligible.campaign_id
        and enrollments.user_id = eligible.user_id
)

select * from members
order by campaign_id
