{#-
  Which campaigns int_campaign_trading recomputes in an incremental run (none: all).

  A started campaign's members and trading depend on its own record, its enrollments, the
  users' registration and country, their tiers on S-1, and the trades of S-n..E. So a run
  recomputes a campaign when it has no row yet, when its window end moved (it is running:
  the end is the as-of date), when its window reaches the dirty-from day (late or
  re-delivered trades, tiers, moved registrations: incremental_dirty_from), when a new
  version of it or a new enrollment in it arrived, and every campaign when an enrollments
  partition was re-delivered (what it removed is gone) or a user's country changed. A
  finished campaign with none of these is not read again.
-#}
{% macro campaigns_to_rebuild() %}
    {%- if not execute or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set raw = var('raw_schema') -%}
    {%- set query -%}
        with state as (
            {{ incremental_window_state() }}
        ),

        as_of as (
            select max(as_of_date) as as_of_date from {{ ref('int_days') }}
        ),

        started as (
            select campaigns.campaign_id, least(campaigns.end_date, as_of.as_of_date) as window_end_date
            from {{ ref('stg_crm__campaigns') }} as campaigns
            cross join as_of
            where campaigns.start_date <= as_of.as_of_date
        ),

        new_versions as (
            select campaign_id from {{ raw }}.crm_campaigns cross join state
            where _load_id > state.processed and _load_id <= state.ceiling
            union
            select campaign_id from {{ raw }}.crm_campaign_enrollments cross join state
            where _load_id > state.processed and _load_id <= state.ceiling
        ),

        redelivered_enrollments as (
            {{ partition_redelivered('crm', 'campaign_enrollments') }}
        ),

        user_countries as (
            {{ users_with_new_versions(['country']) }}
        ),

        moved_country as (
            select 1
            from user_countries as new_version
            inner join user_countries as old_version
                on new_version.user_id = old_version.user_id
                and new_version.is_new and not old_version.is_new
                and new_version.recency = 1 and old_version.recency = 1
            where new_version.country is distinct from old_version.country
        )

        select started.campaign_id
        from started
        left join {{ this }} as stored on started.campaign_id = stored.campaign_id
        where stored.campaign_id is null
            or stored.window_end_date <> started.window_end_date
            or started.window_end_date >= {{ incremental_dirty_from() }}
            or started.campaign_id in (select campaign_id from new_versions)
            or exists (select 1 from redelivered_enrollments)
            or exists (select 1 from moved_country)
        order by 1
    {%- endset -%}
    {{ return(run_query(query).columns[0].values() | list) }}
{% endmacro %}

{#- Pre-hook: drop the campaigns about to be recomputed, and any that has not started (any
    more) by the as-of date. -#}
{% macro delete_rebuilt_campaigns() %}
    {%- set rebuilt = campaigns_to_rebuild() -%}
    {%- if rebuilt is none -%}
        select 1
    {%- else -%}
        delete from {{ this }}
        where campaign_id = any({{ text_array(rebuilt) }})
            or campaign_id not in (
                select campaigns.campaign_id
                from {{ ref('stg_crm__campaigns') }} as campaigns
                where campaigns.start_date <= (select max(as_of_date) from {{ ref('int_days') }})
            )
    {%- endif -%}
{% endmacro %}
