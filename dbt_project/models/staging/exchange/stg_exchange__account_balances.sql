{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['user_id', 'snapshot_date'],
    full_refresh=(true if 'stg_exchange__account_balances' in window_var('restage', []) else none),
    on_schema_change='fail',
    indexes=[
        {'columns': ['user_id', 'snapshot_date'], 'unique': True},
        {'columns': ['snapshot_date']},
    ],
) }}
{%- set columns = 'user_id, snapshot_date, equity_usd, _load_id, _dt, _file, _line' %}

-- one row per user and day; an incremental table like stg_exchange__trades
{{ staged_candidates(
    source('exchange', 'account_balances'),
    columns,
    ['user_id', 'snapshot_date'],
    'exchange_account_balances',
) }},

account_balances as (
    {{ dedup('candidates', ['user_id', 'snapshot_date']) }}
)

select
    user_id,
    snapshot_date,
    equity_usd,
    _load_id,
    _dt,
    _file,
    _line
from account_balances
order by snapshot_date
