with transfers as (
    {{ dedup(source('exchange', 'transfers'), ['transfer_id']) }}
)

select
    transfer_id,
    user_id,
    asset,
    direction,
    amount,
    status,
    created_at,
    {{ utc_date('created_at') }} as created_date
from transfers
