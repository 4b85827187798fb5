with campaign_enrollments as (
    {{ dedup(source('crm', 'campaign_enrollments'), ['campaign_id', 'user_id']) }}
)

select
    campaign_id,
    user_id,
    enrolled_at,
    {{ utc_date('enrolled_at') }} as enrolled_date
from campaign_enrollments
