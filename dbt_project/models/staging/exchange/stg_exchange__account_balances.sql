with account_balances as (
    {{ dedup(source('exchange', 'account_balances'), ['user_id', 'snapshot_date']) }}
)

select
    user_id,
    snapshot_date,
    equity_usd
from account_balances
