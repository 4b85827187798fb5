{{ campaign_days_config(['enrolled_campaigns']) }}

-- depends_on: {{ ref('stg_crm__campaigns') }}, {{ ref('int_campaign_windows') }}
-- per started campaign and day of its windows, the volume and fees on the campaign's line of
-- its enrolled users (its participants), and of those of them in its base (in_base_*).
-- Enrollments arriving recompute the campaign's days from its enrolled users alone
{{ campaign_member_days('enrolled', ['in_base']) }}
