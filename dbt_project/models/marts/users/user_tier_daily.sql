{{ window_config('activity_date') }}
{%- set from_day = window_start() %}

with days as (
    select activity_date
    from {{ ref('int_days') }}
    where activity_date >= {{ from_day }}
),

bounds as (
    select min(activity_date) as first_day from days
),

tiers as (
    select tier
    from (
        values ('high_net_worth', 1), ('new', 2), ('active', 3), ('dormant', 4)
    ) as tiers (tier, precedence)
),

spells as (
    select user_id, tier, valid_from, valid_to
    from {{ ref('int_user_tier_spells') }}
    where valid_to >= (select bounds.first_day from bounds)
),

-- members per tier and day, from the spells: +1 on a spell's first day (or the first day
-- built), -1 the day after its last
member_edges as (
    select greatest(spells.valid_from, bounds.first_day) as activity_date, spells.tier, 1 as delta
    from spells
    cross join bounds
    union all
    select valid_to + 1 as activity_date, tier, -1 as delta from spells
    where valid_to < {{ open_end() }}
),

edge_totals as (
    select activity_date, tier, sum(delta) as delta
    from member_edges
    group by 1, 2
),

members as (
    select
        days.activity_date,
        tiers.tier,
        sum(coalesce(edge_totals.delta, 0)) over (
            partition by tiers.tier order by days.activity_date
        ) as users
    from days
    cross join tiers
    left join edge_totals
        on days.activity_date = edge_totals.activity_date and tiers.tier = edge_totals.tier
),

-- the day's activity of each member, in the tier the member was in that day
activity as (
    select
        user_id,
        activity_date,
        is_active,
        volume_usd,
        fees_usd,
        deposits_usd - withdrawals_usd as net_deposits_usd
    from {{ ref('int_user_activity_daily') }}
    where activity_date >= {{ from_day }}
),

tier_activity as (
    select
        activity.activity_date,
        spells.tier,
        count(*) filter (where activity.is_active) as active_users,
        sum(activity.volume_usd) as volume_usd,
        sum(activity.fees_usd) as fees_usd,
        sum(activity.net_deposits_usd) as net_deposits_usd
    from activity
    inner join spells
        on activity.user_id = spells.user_id
        and activity.activity_date between spells.valid_from and spells.valid_to
    group by 1, 2
),

tier_days as (
    select
        members.activity_date::date as activity_date,
        members.tier::text as tier,
        members.users::bigint as users,
        coalesce(tier_activity.active_users, 0)::bigint as active_users,
        coalesce(tier_activity.volume_usd, 0)::numeric as volume_usd,
        coalesce(tier_activity.fees_usd, 0)::numeric as fees_usd,
        coalesce(tier_activity.net_deposits_usd, 0)::numeric as net_deposits_usd
    from members
    left join tier_activity
        on members.activity_date = tier_activity.activity_date and members.tier = tier_activity.tier
)

select * from tier_days
order by activity_date
