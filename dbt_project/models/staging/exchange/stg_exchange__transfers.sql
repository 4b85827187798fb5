{{ staged_config(
    unique_key='transfer_id',
    indexes=[
        {'columns': ['transfer_id'], 'unique': True},
        {'columns': ['created_date']},
    ],
) }}
{%- set columns = 'transfer_id, user_id, asset, direction, amount, status, created_at,'
    ~ ' _load_id, _dt, _file, _line' %}

-- one row per transfer_id (the later dt, file, line wins); an incremental table like
-- stg_exchange__trades: a day's build stages the rows loaded since the last build against
-- the versions already staged for their keys, and a re-delivered partition restages it whole
-- (var restage). Read by day (created_date) by the priced transfers
{{ staged_candidates(
    source('exchange', 'transfers'), columns, ['transfer_id'], 'exchange_transfers'
) }},

transfers as (
    {{ dedup('candidates', ['transfer_id']) }}
)

select
    transfer_id,
    user_id,
    asset,
    direction,
    amount,
    status,
    created_at,
    {{ utc_date('created_at') }} as created_date,
    _load_id,
    _dt,
    _file,
    _line
from transfers
