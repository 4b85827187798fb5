{{ config(
    materialized='incremental',
    incremental_strategy='append',
    full_refresh=(true if window_var('rebuild_all_campaigns', false) else none),
    on_schema_change='fail',
    pre_hook=["{{ delete_recomputed_campaigns() }}"],
    indexes=[{'columns': ['campaign_id', 'user_id'], 'unique': True}],
) }}

-- depends_on: {{ ref('stg_crm__campaigns') }}
-- the users of each started campaign who can count in it: its base (registered before the
-- start S and in the target tier on S-1: in_base) and its enrolled users (enrolled), each with
-- whether their latest country is one it excludes (excluded). Participants are the enrolled,
-- controls the base users neither excluded nor enrolled (member_role: participant, control,
-- or excluded for a base user of an excluded country). The base depends on data up to S-1
-- only, so a run recomputes the campaigns whose S-1 falls in the change window and those whose
-- own record or enrollments changed (vars changed_campaigns, enrolled_campaigns); of those that
-- exclude a country a user moved into or out of (country_campaigns), the rows of the movers
-- (country_movers; the whole campaign when there are too many to name). A re-delivered
-- enrollments partition rebuilds the table (var rebuild_all_campaigns)
{%- set movers = country_movers() %}
{%- set movers_only = movers is not none and is_incremental() %}
with campaigns as (
    select
        campaign_id,
        target_tier,
        excluded_countries,
        start_date,
        {%- if movers_only %}
        -- a campaign recomputed for the country movers only (delete_recomputed_campaigns)
        campaign_id not in ({{ campaigns_to_recompute(members_recomputed_whole()) }}) as movers_only
        {%- else %}
        false as movers_only
        {%- endif %}
    from {{ ref('int_campaign_windows') }}
    {%- if is_incremental() %}
    where campaign_id in (
        {{ campaigns_to_recompute(['country_campaigns', 'enrolled_campaigns']) }}
    )
    {%- endif %}
),

enrollments as (
    select distinct enrollments.campaign_id, enrollments.user_id
    from {{ ref('stg_crm__campaign_enrollments') }} as enrollments
    inner join campaigns
        on enrollments.campaign_id = campaigns.campaign_id
    where {{ movers_only_filter('enrollments.user_id') }}
),

users as (
    select user_id, registered_date, country from {{ ref('stg_crm__users') }}
),

users_tiered as (
    select distinct spells.user_id, campaigns.start_date - 1 as activity_date, spells.tier
    from {{ ref('int_user_tier_spells') }} as spells
    inner join campaigns
        on campaigns.start_date - 1 between spells.valid_from and spells.valid_to
    where {{ movers_only_filter('spells.user_id') }}
),

base as (
    select campaigns.campaign_id, users.user_id
    from campaigns
    inner join users on campaigns.start_date > users.registered_date
    left join users_tiered
        on users.user_id = users_tiered.user_id
        and users_tiered.activity_date = campaigns.start_date - 1
    where
        (campaigns.target_tier = 'all' or users_tiered.tier = campaigns.target_tier)
        and {{ movers_only_filter('users.user_id') }}
),

campaign_users as (
    select
        coalesce(enrollments.campaign_id, base.campaign_id) as campaign_id,
        coalesce(enrollments.user_id, base.user_id) as user_id,
        base.user_id is not null as in_base,
        enrollments.user_id is not null as enrolled
    from enrollments
    full outer join base
        on enrollments.campaign_id = base.campaign_id
        and enrollments.user_id = base.user_id
),

flagged as (
    select
        campaign_users.campaign_id,
        campaign_users.user_id,
        campaign_users.in_base,
        campaign_users.enrolled,
        coalesce(users.country, '') = any(campaigns.excluded_countries) as excluded
    from campaign_users
    inner join campaigns on campaign_users.campaign_id = campaigns.campaign_id
    left join users on campaign_users.user_id = users.user_id
),

members as (
    select
        campaign_id::text as campaign_id,
        user_id::text as user_id,
        (
            case
                when enrolled then 'participant'
                when excluded then 'excluded'
                else 'control'
            end
        )::text as member_role,
        in_base::boolean as in_base,
        excluded::boolean as excluded,
        enrolled::boolean as enrolled
    from flagged
)

select * from members
order by campaign_id
