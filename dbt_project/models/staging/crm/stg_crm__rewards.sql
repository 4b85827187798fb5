with rewards as (
    {{ dedup(source('crm', 'rewards'), ['reward_id']) }}
)

select
    reward_id,
    campaign_id,
    user_id,
    reward_type,
    amount_usd,
    paid_at,
    {{ utc_date('paid_at') }} as paid_date
from rewards
