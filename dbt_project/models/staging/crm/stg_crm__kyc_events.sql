{{ config(materialized='table') }}

-- a table rebuilt each build, not a view: the funnel, the risk alerts and this model's data
-- tests each read it, and each read of a view sorted every version ever loaded
with kyc_events as (
    {{ dedup(source('crm', 'kyc_events'), ['event_id']) }}
)

select
    event_id,
    user_id,
    kyc_level,
    status,
    event_at,
    {{ utc_date('event_at') }} as event_date
from kyc_events
