{{ campaign_days_config([]) }}

-- depends_on: {{ ref('stg_crm__campaigns') }}, {{ ref('int_campaign_windows') }}
-- per started campaign and day of its windows, the volume and fees on the campaign's line of
-- its base (int_campaign_members.in_base: registered before S, in the target tier on S-1).
-- Neither enrollments nor countries change it: a run computes the change window's days, the
-- day a running campaign's pre window gained, and every day of a campaign recomputed whole
-- (its S-1 in the window, its record changed)
{{ campaign_member_days('in_base') }}
