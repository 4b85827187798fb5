{{ window_config(
    'created_date', pre_hooks=["{{ assert_prices_complete('transfers', window_start()) }}"]
) }}
{%- set from_day = window_start() %}

-- completed transfers in the day spine, in USD at the asset's price of their UTC day
with days as (
    select activity_date from {{ ref('int_days') }}
    where activity_date >= {{ from_day }}
),

transfers as (
    select transfers.*
    from {{ ref('stg_exchange__transfers') }} as transfers
    inner join days on transfers.created_date = days.activity_date
    where transfers.status = 'completed'
),

prices as (
    select asset, price_date, usd_price from {{ ref('stg_exchange__asset_prices') }}
),

transfers_priced as (
    select
        transfers.transfer_id,
        transfers.user_id,
        transfers.asset,
        transfers.direction,
        transfers.amount,
        transfers.created_at,
        transfers.created_date,
        transfers.amount * prices.usd_price as amount_usd
    from transfers
    inner join prices
        on transfers.asset = prices.asset
        and transfers.created_date = prices.price_date
)

select * from transfers_priced
order by created_date
