-- latest state of each ticket; subject and body masked (e-mails, phone numbers)
with tickets as (
    {{ dedup(source('feedback', 'tickets'), ['ticket_id'], updated_at='updated_at') }}
)

select
    ticket_id,
    user_id,
    channel,
    category,
    product_id,
    priority,
    created_at,
    {{ utc_date('created_at') }} as created_date,
    first_response_at,
    resolved_at,
    csat,
    {{ mask_pii('subject') }} as subject,
    {{ mask_pii('body') }} as body,
    updated_at
from tickets
