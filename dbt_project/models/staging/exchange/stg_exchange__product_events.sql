with product_events as (
    {{ dedup(source('exchange', 'product_events'), ['event_id']) }}
)

select
    event_id,
    product_id,
    event_type,
    event_at,
    {{ utc_date('event_at') }} as event_date,
    {{ mask_pii('note') }} as note
from product_events
