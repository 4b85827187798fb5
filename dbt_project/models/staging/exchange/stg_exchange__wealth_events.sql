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
