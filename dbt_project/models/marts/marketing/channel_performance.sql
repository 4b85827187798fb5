-- spend, registrations, new traders and CAC per month and channel (dense: every month of
-- the spine x the 7 channels)
with days as (
    select activity_date, first_date, as_of_date from {{ ref('int_days') }}
),

months as (
    select distinct date_trunc('month', activity_date)::date as month from days
),

as_of as (
    select max(as_of_date) as as_of_date from days
),

channels as (
    select acquisition_channel
    from {{ values_relation(var('acquisition_channels'), 'acquisition_channel') }}
),

spend as (
    select
        date_trunc('month', spend_date)::date as month,
        acquisition_channel,
        sum(spend_usd) as spend_usd
    from {{ ref('stg_crm__marketing_spend') }}
    where spend_date <= (select as_of.as_of_date from as_of)
    group by 1, 2
),

registrations as (
    select
        date_trunc('month', registered_date)::date as month,
        acquisition_channel,
        count(*) as registered_users
    from {{ ref('stg_crm__users') }}
    where registered_date <= (select as_of.as_of_date from as_of)
    group by 1, 2
),

new_traders as (
    select
        date_trunc('month', first_trades.first_trade_date)::date as month,
        users.acquisition_channel,
        count(*) as new_traders
    from {{ ref('int_user_first_trades') }} as first_trades
    inner join {{ ref('stg_crm__users') }} as users on first_trades.user_id = users.user_id
    group by 1, 2
),

channel_months as (
    select
        months.month::date as month,
        channels.acquisition_channel::text as acquisition_channel,
        coalesce(spend.spend_usd, 0)::numeric as spend_usd,
        coalesce(registrations.registered_users, 0)::bigint as registered_users,
        coalesce(new_traders.new_traders, 0)::bigint as new_traders,
        trim_scale(coalesce(spend.spend_usd, 0) / nullif(new_traders.new_traders, 0))::numeric
            as cac_usd
    from months
    cross join channels
    left join spend using (month, acquisition_channel)
    left join registrations using (month, acquisition_channel)
    left join new_traders using (month, acquisition_channel)
)

select * from channel_months
