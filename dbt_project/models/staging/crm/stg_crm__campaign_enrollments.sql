{{ staged_config(
    unique_key=['campaign_id', 'user_id'],
    indexes=[{'columns': ['campaign_id', 'user_id'], 'unique': True}],
) }}
{%- set columns = 'campaign_id, user_id, enrolled_at, _load_id, _dt, _file, _line' %}

-- one row per campaign and user (the later dt, file, line wins); an incremental table like
-- stg_exchange__trades (a re-delivered partition restages it whole: var restage). Read whole
-- by the campaign members
{{ staged_candidates(
    source('crm', 'campaign_enrollments'),
    columns,
    ['campaign_id', 'user_id'],
    'crm_campaign_enrollments',
) }},

campaign_enrollments as (
    {{ dedup('candidates', ['campaign_id', 'user_id']) }}
)

select
    campaign_id,
    user_id,
    enrolled_at,
    {{ utc_date('enrolled_at') }} as enrolled_date,
    _load_id,
    _dt,
    _file,
    _line
from campaign_enrollments
