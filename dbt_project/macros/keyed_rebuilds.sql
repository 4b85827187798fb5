{#- Pre-hook of int_risk_trade_alerts: a user whose device or IP changed (var relinked_users,
    exops.transform.window) may gain or lose linked accounts on any day, so the
    linked-account alerts of their pairs are dropped on every day and rebuilt (the days of
    the window are dropped anyway). -#}
{% macro delete_relinked_pair_alerts() -%}
    {%- set relinked = window_var('relinked_users', []) if is_incremental() else [] -%}
    {%- if relinked -%}
        delete from {{ this }}
        where alert_type = 'linked_account_trade'
            and (
                {{ dbt.split_part('subject_id', "'|'", 1) }} in {{ text_list(relinked) }}
                or {{ dbt.split_part('subject_id', "'|'", 2) }} in {{ text_list(relinked) }}
            )
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook of int_user_links: the pairs of the users whose device or IP changed and of the
    new users (var relinked_users); the select pairs them again. -#}
{% macro delete_relinked_links() -%}
    {%- set relinked = window_var('relinked_users', []) if is_incremental() else [] -%}
    {%- if relinked -%}
        delete from {{ this }}
        where user_a in {{ text_list(relinked) }} or user_b in {{ text_list(relinked) }}
    {%- endif -%}
{%- endmacro %}

{#- The started campaigns a campaign model recomputes whole: their S-1 falls in the change
    window (registrations and tiers up to S-1 decide who is in their base), or their own record
    changed (var changed_campaigns); and, named in `also`, those of the narrower changes:
    country_campaigns (a user moved into or out of a country they exclude), enrolled_campaigns
    (their enrollments changed). -#}
{% macro campaigns_to_recompute(also=[]) -%}
    select campaign_id from {{ ref('stg_crm__campaigns') }}
    where start_date - 1 >= {{ window_start() }}
        or campaign_id in {{ text_list(window_var('changed_campaigns', [])) }}
        {%- for name in also %}
        or campaign_id in {{ text_list(window_var(name, [])) }}
        {%- endfor %}
{%- endmacro %}

{#- The users who moved into or out of a country (var country_movers) when the window names
    them: then a campaign of country_campaigns only changes for them (their member rows, the
    days they traded); none when there are too many to name (those campaigns are recomputed
    whole). -#}
{% macro country_movers() -%}
    {{ return(window_var('country_movers', none) if is_incremental() else none) }}
{%- endmacro %}

{#- The lists of campaigns int_campaign_members recomputes whole: with the movers named, a
    campaign of country_campaigns only recomputes their rows. -#}
{% macro members_recomputed_whole() -%}
    {{ return(['enrolled_campaigns'] if country_movers() is not none else ['country_campaigns', 'enrolled_campaigns']) }}
{%- endmacro %}

{#- Whether a row of `relation` (campaign_id, user_id) is a country mover's in a campaign
    that excludes a country (var country_campaigns): false unless the window names movers. -#}
{% macro movers_of_country_campaigns(relation) -%}
    {%- set movers = country_movers() -%}
    {%- if movers -%}
        ({{ relation }}.campaign_id in {{ text_list(window_var('country_campaigns', [])) }}
            and {{ relation }}.user_id in {{ text_list(movers) }})
    {%- else -%}
        false
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook of int_campaign_members: the campaigns about to be recomputed go (the select
    brings back those started by the as-of date), and of the other campaigns that exclude a
    country someone moved into or out of, the movers' rows. -#}
{% macro delete_recomputed_campaigns() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as known
        where known.campaign_id in ({{ campaigns_to_recompute(members_recomputed_whole()) }})
            or {{ movers_of_country_campaigns('known') }}
    {%- endif -%}
{%- endmacro %}

{#- A condition on `relation`'s campaign_id and activity_date: a day no campaign window holds
    any more (a campaign that no longer starts by the as-of date, a window that shrank). One
    uncorrelated list (a hashed lookup per row), not a `not exists` over the windows' view,
    which PostgreSQL evaluates again for every row. -#}
{% macro outside_campaign_days(relation) -%}
    ({{ relation }}.campaign_id, {{ relation }}.activity_date) not in (
        select campaign_days.campaign_id, campaign_days.activity_date
        from {{ ref('int_campaign_days') }} as campaign_days
    )
{%- endmacro %}

{#- Pre-hook of int_campaign_excluded_trading: the change window's days, the campaigns about
    to be recomputed whole, the country movers' rows in the campaigns that exclude a country,
    and the days no campaign window holds any more. -#}
{% macro delete_excluded_trading() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as known
        where known.activity_date >= {{ window_start() }}
            or known.campaign_id in ({{ campaigns_to_recompute(members_recomputed_whole()) }})
            or {{ movers_of_country_campaigns('known') }}
            or {{ outside_campaign_days('known') }}
    {%- endif -%}
{%- endmacro %}

{#- In int_campaign_members, a condition on `campaigns` (the campaigns it recomputes) and a
    user column: of a campaign recomputed for the country movers only, only their rows. -#}
{% macro movers_only_filter(user_column) -%}
    {%- set movers = country_movers() -%}
    {%- if movers is not none -%}
        (not campaigns.movers_only or {{ user_column }} in {{ text_list(movers) }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook of the campaign day models: the change window's days, every day of the campaigns
    they recompute (campaigns_to_recompute(also)), and the days no campaign window holds any
    more (a campaign that no longer starts by the as-of date, a window that shrank). Of the
    country_campaigns, only the days their excluded members can have changed: the days the
    users who moved country (var country_movers) traded, when the window names them. -#}
{% macro delete_campaign_days(also=[]) -%}
    {%- if is_incremental() -%}
        {%- set movers = country_movers() if 'country_campaigns' in also else none -%}
        {%- set whole = also if movers is none else also | reject('equalto', 'country_campaigns') | list -%}
        delete from {{ this }} as known
        where known.activity_date >= {{ window_start() }}
            or known.campaign_id in ({{ campaigns_to_recompute(whole) }})
            {%- if movers %}
            or (
                known.campaign_id in {{ text_list(window_var('country_campaigns', [])) }}
                and known.activity_date in (
                    select movers_days.activity_date
                    from {{ ref('int_user_product_daily') }} as movers_days
                    where movers_days.user_id in {{ text_list(movers) }}
                )
            )
            {%- endif %}
            or {{ outside_campaign_days('known') }}
    {%- endif -%}
{%- endmacro %}

{#- Config of a campaign day model, one row per campaign and day: appended for the days it
    has no row for, after its pre-hook deletes those recomputed (delete_campaign_days(also));
    rebuilt whole when an enrollments partition was re-delivered. -#}
{% macro campaign_days_config(also=[]) %}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        full_refresh=(true if window_var('rebuild_all_campaigns', false) else none),
        on_schema_change='fail',
        pre_hook=[
            "{{ delete_campaign_days(" ~ also ~ ") }}",
            "{{ prefer_hash_joins() }}",
        ],
        indexes=[{'columns': ['campaign_id', 'activity_date'], 'unique': True}],
    ) }}
{% endmacro %}

{#- The days of the started campaigns' windows a campaign day model has no row for (all of
    them on a full build), with the campaign's line. -#}
{% macro missing_campaign_days() -%}
    select campaign_days.campaign_id, campaign_days.product_line, campaign_days.activity_date
    from {{ ref('int_campaign_days') }} as campaign_days
    {%- if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as known
        where known.campaign_id = campaign_days.campaign_id
            and known.activity_date = campaign_days.activity_date
    )
    {%- endif %}
{%- endmacro %}

{#- The body of a campaign day model: per started campaign and day of its windows it has no
    row for (all of them on a full build), the volume and fees on the campaign's line of the
    users of int_campaign_members that `members_where` selects, and the same for each flag
    column of `flags` (<flag>_volume_usd, <flag>_fees_usd). -#}
{% macro campaign_member_days(members_where, flags=[]) -%}
with missing_days as (
    {{ missing_campaign_days() }}
),

members as (
    select campaign_id, user_id{% for flag in flags %}, {{ flag }}{% endfor %}
    from {{ ref('int_campaign_members') }}
    where ({{ members_where }})
        and campaign_id in (select missing_days.campaign_id from missing_days)
),

-- the rollup's rows of those users on the missing days, each (user, day) read once whatever
-- the number of campaigns that need that day (then joined to each campaign's users)
user_days as (
    select user_id, activity_date, product_line, volume_usd, fees_usd
    from {{ ref('int_user_product_daily') }}
    where activity_date in (select missing_days.activity_date from missing_days)
        and user_id in (select members.user_id from members)
),

member_trading as (
    select
        missing_days.campaign_id,
        missing_days.activity_date,
        sum(user_days.volume_usd) as volume_usd,
        sum(user_days.fees_usd) as fees_usd
        {%- for flag in flags %},
        sum(user_days.volume_usd) filter (where members.{{ flag }}) as {{ flag }}_volume_usd,
        sum(user_days.fees_usd) filter (where members.{{ flag }}) as {{ flag }}_fees_usd
        {%- endfor %}
    from user_days
    inner join members on user_days.user_id = members.user_id
    inner join missing_days
        on members.campaign_id = missing_days.campaign_id
        and user_days.activity_date = missing_days.activity_date
    where missing_days.product_line is null or missing_days.product_line = user_days.product_line
    group by 1, 2
)

select
    missing_days.campaign_id::text as campaign_id,
    missing_days.activity_date::date as activity_date,
    coalesce(member_trading.volume_usd, 0)::numeric as volume_usd,
    coalesce(member_trading.fees_usd, 0)::numeric as fees_usd
    {%- for flag in flags %},
    coalesce(member_trading.{{ flag }}_volume_usd, 0)::numeric as {{ flag }}_volume_usd,
    coalesce(member_trading.{{ flag }}_fees_usd, 0)::numeric as {{ flag }}_fees_usd
    {%- endfor %}
from missing_days
left join member_trading
    on missing_days.campaign_id = member_trading.campaign_id
    and missing_days.activity_date = member_trading.activity_date
order by activity_date
{%- endmacro %}

{#- The valid_to of a spell still running (int_user_tier_spells): far in the future, so that a
    spell does not change when the as-of date moves. -#}
{% macro open_end() -%}
    cast('9999-12-31' as date)
{%- endmacro %}

{#- Pre-hook of int_user_tier_spells: the spells of the users with a tier change in the window,
    as stored (a change the window may have dropped) or as rebuilt; the select rebuilds them. -#}
{% macro delete_changed_spells() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where user_id in (
            select known.user_id from {{ this }} as known
            where known.valid_from >= {{ window_start() }}
            union
            select changes.user_id from {{ ref('int_user_tier_changes') }} as changes
            where changes.valid_from >= {{ window_start() }}
        )
    {%- endif -%}
{%- endmacro %}
