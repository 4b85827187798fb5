{{ window_config('activity_date') }}
{%- set from_day = window_start() %}

-- users changing tier from d-1 to d (users registered on or before d-1 only: a change with a
-- from_tier); incremental by day
with days as (
    select activity_date
    from {{ ref('int_days') }}
    where activity_date >= {{ from_day }}
),

tier_changes as (
    select user_id, valid_from as activity_date, from_tier, tier as to_tier
    from {{ ref('int_user_tier_changes') }}
    where valid_from >= {{ from_day }} and from_tier is not null
),

transitions as (
    select
        tier_changes.activity_date::date as activity_date,
        tier_changes.from_tier::text as from_tier,
        tier_changes.to_tier::text as to_tier,
        count(*)::bigint as users
    from tier_changes
    inner join days on tier_changes.activity_date = days.activity_date
    group by 1, 2, 3
)

select * from transitions
order by activity_date
