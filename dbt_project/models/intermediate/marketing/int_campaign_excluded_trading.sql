{{ config(
    materialized='incremental',
    incremental_strategy='append',
    full_refresh=(true if window_var('rebuild_all_campaigns', false) else none),
    on_schema_change='fail',
    pre_hook=["{{ delete_excluded_trading() }}"],
    indexes=[{'columns': ['campaign_id', 'activity_date', 'user_id'], 'unique': True}],
) }}

-- depends_on: {{ ref('stg_crm__campaigns') }}, {{ ref('int_campaign_days') }}
-- per started campaign, base user whose latest country it excludes (int_campaign_members) and
-- day of its windows they traded on the campaign's line, their volume and fees, and whether
-- they enrolled: what int_campaign_excluded_daily sums. A run adds the change window's days of
-- every such user, every day of the campaigns recomputed whole (their S-1 in the window, their
-- record or enrollments changed) and every day of the users who moved into or out of a country
-- a campaign excludes (country_movers), so that a move re-reads the movers' trading, not that
-- of every excluded user
with campaigns as (
    select
        campaign_id,
        product_line,
        pre_start_date,
        window_end_date,
        {%- if is_incremental() %}
        campaign_id in ({{ campaigns_to_recompute(members_recomputed_whole()) }}) as recomputed
        {%- else %}
        true as recomputed
        {%- endif %}
    from {{ ref('int_campaign_windows') }}
),

members as (
    select
        members.campaign_id,
        members.user_id,
        members.enrolled,
        campaigns.product_line,
        campaigns.window_end_date,
        case
            when campaigns.recomputed or {{ movers_of_country_campaigns('members') }}
                then campaigns.pre_start_date
            when campaigns.pre_start_date > {{ window_start() }} then campaigns.pre_start_date
            else {{ window_start() }}
        end as from_date
    from {{ ref('int_campaign_members') }} as members
    inner join campaigns on members.campaign_id = campaigns.campaign_id
    where members.in_base and members.excluded
),

member_days as (
    select
        members.campaign_id,
        members.user_id,
        user_days.activity_date,
        members.enrolled,
        sum(user_days.volume_usd) as volume_usd,
        sum(user_days.fees_usd) as fees_usd
    from members
    inner join {{ ref('int_user_product_daily') }} as user_days
        on members.user_id = user_days.user_id
        and user_days.activity_date between members.from_date and members.window_end_date
    where members.product_line is null or members.product_line = user_days.product_line
    group by members.campaign_id, members.user_id, user_days.activity_date, members.enrolled
)

select
    campaign_id::text as campaign_id,
    user_id::text as user_id,
    activity_date::date as activity_date,
    enrolled::boolean as enrolled,
    volume_usd::numeric as volume_usd,
    fees_usd::numeric as fees_usd
from member_days
order by activity_date
