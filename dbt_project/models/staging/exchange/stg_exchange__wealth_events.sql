{{ staged_config(
    unique_key='event_id',
    indexes=[
        {'columns': ['event_id'], 'unique': True},
        {'columns': ['event_date']},
    ],
) }}
{%- set columns = 'event_id, user_id, product_id, event_type, asset, amount, event_at,'
    ~ ' _load_id, _dt, _file, _line' %}

-- one row per event_id (the later dt, file, line wins); an incremental table like
-- stg_exchange__trades (a re-delivered partition restages it whole: var restage). Read by day
-- (event_date) by the priced wealth events
{{ staged_candidates(
    source('exchange', 'wealth_events'), columns, ['event_id'], 'exchange_wealth_events'
) }},

wealth_events as (
    {{ dedup('candidates', ['event_id']) }}
)

select
    event_id,
    user_id,
    product_id,
    event_type,
    asset,
    amount,
    event_at,
    {{ utc_date('event_at') }} as event_date,
    _load_id,
    _dt,
    _file,
    _line
from wealth_events
