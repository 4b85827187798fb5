with marketing_spend as (
    {{ dedup(source('crm', 'marketing_spend'), ['spend_date', 'channel']) }}
)

select
    spend_date,
    channel as acquisition_channel,
    spend_usd
from marketing_spend
