{{ config(
    materialized='table',
    indexes=[{'columns': ['event_date']}],
) }}

-- a table rebuilt each build, not a view: the priced wealth events (the window's days, by
-- event_date) and this model's data tests each read it, and each read of a view sorted every
-- version ever loaded
with wealth_events as (
    {{ dedup(source('exchange', 'wealth_events'), ['event_id']) }}
)

select
    event_id,
    user_id,
    product_id,
    event_type,
    asset,
    amount,
    event_at,
    {{ utc_date('event_at') }} as event_date
from wealth_events
