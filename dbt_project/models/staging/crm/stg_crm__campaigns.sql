with campaigns as (
    {{ dedup(source('crm', 'campaigns'), ['campaign_id'], updated_at='updated_at') }}
)

select
    campaign_id,
    campaign_type,
    name as campaign_name,
    product_line,
    target_tier,
    start_at,
    end_at,
    {{ utc_date('start_at') }} as start_date,
    {{ utc_date('end_at') }} as end_date,
    budget_usd,
    coalesce(excluded_countries, array[]::text[]) as excluded_countries,
    updated_at
from campaigns
