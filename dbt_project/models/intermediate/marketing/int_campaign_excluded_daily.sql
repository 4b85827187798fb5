{{ campaign_days_config(['country_campaigns', 'enrolled_campaigns']) }}

-- depends_on: {{ ref('stg_crm__campaigns') }}, {{ ref('int_campaign_windows') }}
-- per started campaign and day of its windows, the volume and fees on the campaign's line of
-- its base users whose latest country it excludes, and of those of them who enrolled
-- (enrolled_*). A few countries' users: a user moving into or out of an excluded country, or
-- an enrollment, recomputes the campaign's days from them alone
{{ campaign_member_days('in_base and excluded', ['enrolled']) }}
