-- users whose tier on the as-of date is dormant, with what a recall campaign needs
with as_of as (
    select max(as_of_date) as as_of_date from {{ ref('int_days') }}
),

dormant_users as (
    select spells.user_id, coalesce(balances.equity_usd, 0) as equity_usd
    from {{ ref('int_user_tier_spells') }} as spells
    inner join as_of on as_of.as_of_date between spells.valid_from and spells.valid_to
    left join {{ ref('stg_exchange__account_balances') }} as balances
        on spells.user_id = balances.user_id and as_of.as_of_date = balances.snapshot_date
    where spells.tier = 'dormant'
),

lifetime_activity as (
    select
        user_id,
        max(last_active_date) as last_active_date,
        sum(volume_usd) as lifetime_volume_usd,
        sum(fees_usd) as lifetime_fees_usd
    from {{ ref('int_user_activity_monthly') }}
    where user_id in (select dormant_users.user_id from dormant_users)
    group by 1
),

targets as (
    select
        dormant_users.user_id::text as user_id,
        users.acquisition_channel::text as acquisition_channel,
        users.country::text as country,
        users.registered_date::date as registered_date,
        lifetime_activity.last_active_date::date as last_active_date,
        (as_of.as_of_date - lifetime_activity.last_active_date)::integer as days_since_active,
        coalesce(lifetime_activity.lifetime_volume_usd, 0)::numeric as lifetime_volume_usd,
        coalesce(lifetime_activity.lifetime_fees_usd, 0)::numeric as lifetime_fees_usd,
        dormant_users.equity_usd::numeric as latest_equity_usd
    from dormant_users
    cross join as_of
    inner join {{ ref('stg_crm__users') }} as users on dormant_users.user_id = users.user_id
    left join lifetime_activity on dormant_users.user_id = lifetime_activity.user_id
)

select * from targets
