{{ staged_dedup_config(
    'exchange', 'account_balances', ['user_id', 'snapshot_date'], 'snapshot_date', 'snapshot_date'
) }}

-- one row per user and day; an incremental table like the trades (macros/staged_dedup.sql)
with account_balances as (
    {{ staged_dedup('exchange', 'account_balances', ['user_id', 'snapshot_date']) }}
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
