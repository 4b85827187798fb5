{{ day_incremental_config('activity_date') }}
{%- set from_day = rebuild_from() %}

-- users changing tier from d-1 to d (users registered on or before d-1 only); incremental
-- by day: a rebuilt day needs only its own and the previous day's tiers
with today as (
    select user_id, activity_date, tier
    from {{ ref('int_users_tiered_daily') }}
    where activity_date >= {{ from_day }}
),

yesterday as (
    select user_id, activity_date, tier
    from {{ ref('int_users_tiered_daily') }}
    where activity_date >= {{ from_day }} - 1
),

tier_changes as (
    select
        today.activity_date,
        yesterday.tier as from_tier,
        today.tier as to_tier,
        today.user_id
    from today
    inner join yesterday
        on today.user_id = yesterday.user_id
        and yesterday.activity_date = today.activity_date - 1
    where today.tier <> yesterday.tier
),

transitions as (
    select
        activity_date::date as activity_date,
        from_tier::text as from_tier,
        to_tier::text as to_tier,
        count(*)::bigint as users
    from tier_changes
    group by 1, 2, 3
)

select * from transitions
