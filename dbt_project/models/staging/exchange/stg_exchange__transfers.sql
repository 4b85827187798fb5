{{ config(
    materialized='table',
    indexes=[{'columns': ['created_date']}],
) }}

-- a table rebuilt each build, not a view: the priced transfers (the window's days, by
-- created_date), the funnel and this model's data tests each read it, and each read of a view
-- sorted every version ever loaded
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
