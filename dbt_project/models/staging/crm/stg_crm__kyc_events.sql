{{ staged_config(
    unique_key='event_id',
    indexes=[{'columns': ['event_id'], 'unique': True}],
) }}
{%- set columns = 'event_id, user_id, kyc_level, status, event_at, _load_id, _dt, _file, _line' %}

-- one row per event_id (the later dt, file, line wins); an incremental table like
-- stg_exchange__trades (a re-delivered partition restages it whole: var restage). Read whole
-- by the funnel and the risk alerts
{{ staged_candidates(source('crm', 'kyc_events'), columns, ['event_id'], 'crm_kyc_events') }},

kyc_events as (
    {{ dedup('candidates', ['event_id']) }}
)

select
    event_id,
    user_id,
    kyc_level,
    status,
    event_at,
    {{ utc_date('event_at') }} as event_date,
    _load_id,
    _dt,
    _file,
    _line
from kyc_events
