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
with loaded_since as (
    select {{ columns }}
    from {{ source('exchange', 'account_balances') }}
    {% if is_incremental() -%}
    where _dt in {{ text_list(window_var('loaded_dates', {}).get('exchange_account_balances', [])) }}
        and _load_id > {{ window_var('since_load_id', 0) }} and _load_id <= {{ window_var('ceiling_load_id', 0) }}
    {%- endif %}
),

candidates as (
    select * from loaded_since
    {% if is_incremental() -%}
    union all
    select {{ columns }}
    from {{ this }}
    where (user_id, snapshot_date) in (select user_id, snapshot_date from loaded_since)
    {%- endif %}
),

account_balances as (
    select distinct on (user_id, snapshot_date) *
    from candidates
    order by user_id asc, snapshot_date asc, _dt desc, _file desc, _line desc
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
