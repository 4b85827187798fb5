-- users changing tier from d-1 to d (users registered on or before d-1 only)
with users_tiered as (
    select user_id, activity_date, tier
    from {{ ref('int_users_tiered_daily') }}
),

tier_changes as (
    select
        today.activity_date,
        yesterday.tier as from_tier,
        today.tier as to_tier,
        today.user_id
    from users_tiered as today
    inner join users_tiered as yesterday
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
