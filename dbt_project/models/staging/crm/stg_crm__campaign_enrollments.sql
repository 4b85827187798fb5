{{ config(materialized='table') }}

-- a table rebuilt each build, not a view: the campaign members and this model's data tests
-- each read it, and each read of a view sorted every version ever loaded
with campaign_enrollments as (
    {{ dedup(source('crm', 'campaign_enrollments'), ['campaign_id', 'user_id']) }}
)

select
    campaign_id,
    user_id,
    enrolled_at,
    {{ utc_date('enrolled_at') }} as enrolled_date
from campaign_enrollments
