{{ day_incremental_config('activity_date') }}
{%- set from_day = rebuild_from() %}

with days as (
    select activity_date
    from {{ ref('int_days') }}
    where activity_date >= {{ from_day }}
),

tiers as (
    select tier
    from (values ('high_net_worth', 1), ('new', 2), ('active', 3), ('dormant', 4)) as tiers (tier, precedence)
),

users_tiered as (
    select *
    from {{ ref('int_users_tiered_daily') }}
    where activity_date >= {{ from_day }}
),

tier_totals as (
    select
        activity_date,
        tier,
        count(*) as users,
        count(*) filter (where is_active) as active_users,
        sum(volume_usd) as volume_usd,
        sum(fees_usd) as fees_usd,
        sum(net_deposits_usd) as net_deposits_usd
    from users_tiered
    group by 1, 2
),

tier_days as (
    select
        days.activity_date::date as activity_date,
        tiers.tier::text as tier,
        coalesce(tier_totals.users, 0)::bigint as users,
        coalesce(tier_totals.active_users, 0)::bigint as active_users,
        coalesce(tier_totals.volume_usd, 0)::numeric as volume_usd,
        coalesce(tier_totals.fees_usd, 0)::numeric as fees_usd,
        coalesce(tier_totals.net_deposits_usd, 0)::numeric as net_deposits_usd
    from days
    cross join tiers
    left join tier_totals
        on days.activity_date = tier_totals.activity_date and tiers.tier = tier_totals.tier
)

select * from tier_days
