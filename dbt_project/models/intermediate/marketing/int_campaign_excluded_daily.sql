{{ config(
    materialized='incremental',
    incremental_strategy='append',
    full_refresh=(true if window_var('rebuild_all_campaigns', false) else none),
    on_schema_change='fail',
    pre_hook=["{{ delete_campaign_days(['country_campaigns', 'enrolled_campaigns']) }}", "{{ prefer_hash_joins() }}"],
    indexes=[{'columns': ['campaign_id', 'activity_date'], 'unique': True}],
) }}

-- depends_on: {{ ref('stg_crm__campaigns') }}, {{ ref('int_campaign_windows') }}
-- per started campaign and day of its windows, the volume and fees on the campaign's line of
-- its base users whose latest country it excludes, and of those of them who enrolled
-- (enrolled_*). A few countries' users: a user moving into or out of an excluded country, or
-- an enrollment, recomputes the campaign's days from them alone
{{ campaign_member_days('in_base and excluded', ['enrolled']) }}
