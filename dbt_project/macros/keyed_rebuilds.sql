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

{#- The started campaigns whose eligible population a run recomputes: their S-1 falls in the
    change window (registrations and tiers up to S-1 decide it), or their own record or an
    excluded country changed (var changed_campaigns); with_enrollments: also those whose
    enrollments changed (var enrolled_campaigns), whose participants and controls move. -#}
{% macro campaigns_to_recompute(with_enrollments=false) -%}
    select campaign_id from {{ ref('stg_crm__campaigns') }}
    where start_date - 1 >= {{ window_start() }}
        or campaign_id in {{ text_list(window_var('changed_campaigns', [])) }}
        {%- if with_enrollments %}
        or campaign_id in {{ text_list(window_var('enrolled_campaigns', [])) }}
        {%- endif %}
{%- endmacro %}

{#- Pre-hook of int_campaign_members: the campaigns about to be recomputed go (the select
    brings back those started by the as-of date). -#}
{% macro delete_recomputed_campaigns() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where campaign_id in ({{ campaigns_to_recompute(true) }})
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook of the campaign day models: the change window's days, every day of the campaigns
    recomputed (campaigns_to_recompute(with_enrollments)), and the days no campaign window
    holds any more (a campaign that no longer starts by the as-of date, a window that
    shrank). -#}
{% macro delete_campaign_days(with_enrollments) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as known
        where known.activity_date >= {{ window_start() }}
            or known.campaign_id in ({{ campaigns_to_recompute(with_enrollments) }})
            or not exists (
                select 1 from {{ ref('int_campaign_windows') }} as campaigns
                where campaigns.campaign_id = known.campaign_id
                    and known.activity_date >= campaigns.pre_start_date
            )
    {%- endif -%}
{%- endmacro %}

{#- The (campaign, day) pairs of int_campaign_days a campaign day model has no row for (all of
    them on a full build). -#}
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
