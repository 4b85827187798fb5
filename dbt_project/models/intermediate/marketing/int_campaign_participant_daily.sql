{{ config(
    materialized='incremental',
    incremental_strategy='append',
    full_refresh=(true if window_var('rebuild_all_campaigns', false) else none),
    on_schema_change='fail',
    pre_hook=["{{ delete_campaign_days(['enrolled_campaigns']) }}", "{{ prefer_hash_joins() }}"],
    indexes=[{'columns': ['campaign_id', 'activity_date'], 'unique': True}],
) }}

-- depends_on: {{ ref('stg_crm__campaigns') }}, {{ ref('int_campaign_windows') }}
-- per started campaign and day of its windows, the volume and fees on the campaign's line of
-- its enrolled users (its participants), and of those of them in its base (in_base_*).
-- Enrollments arriving recompute the campaign's days from its enrolled users alone
{{ campaign_member_days('enrolled', ['in_base']) }}
