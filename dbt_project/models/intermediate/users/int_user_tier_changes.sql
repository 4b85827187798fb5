{{ window_config(
    'valid_from',
    indexes=[{'columns': ['user_id', 'valid_from'], 'unique': True}],
    pre_hooks=["{{ prefer_sorted_aggregation() }}"],
    user_column='user_id',
) }}
{%- set from_day = window_start() %}
{%- set volume_days = var('hnw_volume_window_days') %}
{%- set active_days = var('active_window_days') %}
{%- set lookback = [volume_days, active_days] | max %}
{#- a window of a day or two (a daily build) evaluates each candidate day from the activity its
    windows span; a longer one sweeps the users' days in order, whose cost hardly grows with the
    window's days (at 200,000 users: 1.1 s against 2.3 s for one day, even at three) -#}
{%- set window_days = window_days(every_user=true) %}
{%- set evaluate_directly = window_days is not none and window_days <= 2 %}

-- one row per registered user and day their tier changes, from their registration day on
-- (KPIS.md "User tier", first match wins: high_net_worth, new, active, dormant). A tier
-- depends on the equity of the day, the user volume and activity of the last 30 days and the
-- registration, which change only on: the registration day r and r + new_user_days; an
-- activity day a and the days it leaves the volume and activity windows; a day with
-- high-net-worth equity h and h + 1. So the tier is evaluated on those days only and kept
-- where it changes (int_user_tier_spells turns the changes into spells): no user x day grid.
-- Incremental by day and, for late records, by user (window_config's user_column): the changes
-- are found again from all_users_start for every user and from their from_date for the
-- window's users, and evaluated for the users with a day to evaluate only; a user's tier the
-- day before (which nothing rebuilt can change) is their last change stored before it
with as_of as (
    select max(as_of_date) as as_of_date from {{ ref('int_days') }}
),

users as (
    select user_id, registered_date
    from {{ ref('stg_crm__users') }}
    where registered_date <= (select as_of.as_of_date from as_of)
),

-- from the first day whose leaving a window can change a tier in the window
activity as (
    select user_id, activity_date, volume_usd, is_active
    from {{ ref('int_user_activity_daily') }}
    where activity_date >= {{ from_day }} - {{ lookback }}
),

rich_days as (
    select user_id, snapshot_date as activity_date
    from {{ ref('stg_exchange__account_balances') }}
    where equity_usd >= {{ var('hnw_equity_usd') }}
        and snapshot_date >= {{ from_day }} - 1
),

candidate_days_all as (
    select user_id, registered_date as activity_date from users
    union all
    select user_id, registered_date + {{ var('new_user_days') }} as activity_date from users
    union all
    select user_id, activity_date from activity
    union all
    select user_id, activity_date + {{ active_days }} as activity_date from activity
    where is_active
    union all
    select user_id, activity_date + {{ volume_days }} as activity_date from activity
    where volume_usd <> 0
    union all
    select user_id, activity_date from rich_days
    union all
    select user_id, activity_date + 1 as activity_date from rich_days
),

-- the days up to the as-of date to evaluate (the days a window leaves fall up to 30 days
-- after it: about half of all the candidates on a day's build)
candidate_days as (
    select candidates.user_id, candidates.activity_date
    from candidate_days_all as candidates
    {{- user_window_join('candidates.user_id') }}
    where candidates.activity_date >= {{ from_day }}
        and candidates.activity_date <= (select as_of.as_of_date from as_of)
        and {{ user_window_filter('candidates.activity_date') }}
),

{% if evaluate_directly -%}
-- a short window: each candidate day's windows summed over the activity rows they span (a
-- month's at most per day), a hashed join and aggregation with no sort of the users' history
candidate_evaluations as (
    select distinct user_id, activity_date from candidate_days
),

window_points as (
    select
        user_id,
        activity_date,
        volume_usd,
        case when is_active then 1 else 0 end as active,
        0 as rich
    from activity
    union all
    select user_id, activity_date, 0 as volume_usd, 0 as active, 1 as rich
    from rich_days
),

candidate_windows as (
    select
        candidates.user_id,
        candidates.activity_date,
        coalesce(max(
            case when points.activity_date = candidates.activity_date then points.rich end
        ), 0) as rich,
        coalesce(sum(
            case
                when points.activity_date >= candidates.activity_date - {{ volume_days - 1 }}
                    then points.volume_usd
            end
        ), 0) as volume_window_usd,
        coalesce(max(
            case
                when points.activity_date >= candidates.activity_date - {{ active_days - 1 }}
                    then points.active
            end
        ), 0) as active_in_window
    from candidate_evaluations as candidates
    left join window_points as points
        on candidates.user_id = points.user_id
        and points.activity_date between candidates.activity_date - {{ lookback - 1 }}
        and candidates.activity_date
    group by 1, 2
),

windowed as (
    select
        candidate_windows.user_id,
        candidate_windows.activity_date,
        candidate_windows.rich,
        1 as candidate,
        users.registered_date,
        candidate_windows.volume_window_usd,
        candidate_windows.active_in_window
    from candidate_windows
    inner join users on candidate_windows.user_id = users.user_id
),

candidate_users as (
    select distinct user_id from candidate_evaluations
),

{% else -%}
-- the users with a day to evaluate: the only ones whose days the windows below read
candidate_users as (
    select distinct user_id from candidate_days
),

points as (
    select
        user_id,
        activity_date,
        volume_usd,
        case when is_active then 1 else 0 end as active,
        0 as rich,
        0 as candidate,
        null::date as registered_date
    from activity
    where user_id in (select candidate_users.user_id from candidate_users)
    union all
    select
        user_id,
        activity_date,
        0 as volume_usd,
        0 as active,
        1 as rich,
        0 as candidate,
        null::date as registered_date
    from rich_days
    where user_id in (select candidate_users.user_id from candidate_users)
    union all
    select
        user_id,
        activity_date,
        0 as volume_usd,
        0 as active,
        0 as rich,
        1 as candidate,
        null::date as registered_date
    from candidate_days
    union all
    -- the registration travels with the user's rows: no join after the windows, whose
    -- filtered rows PostgreSQL estimates at one and would join by nested loops
    select
        user_id,
        registered_date as activity_date,
        0 as volume_usd,
        0 as active,
        0 as rich,
        0 as candidate,
        registered_date
    from users
    where user_id in (select candidate_users.user_id from candidate_users)
),

-- grouped in (user, day) order (prefer_sorted_aggregation): the windows that follow read
-- the same order, so the points are sorted once
user_points as (
    select
        user_id,
        activity_date,
        sum(volume_usd) as volume_usd,
        max(active) as active,
        max(rich) as rich,
        max(candidate) as candidate,
        max(registered_date) as registered_date
    from points
    group by 1, 2
),

windowed as (
    select
        user_id,
        activity_date,
        rich,
        candidate,
        max(registered_date) over (partition by user_id) as registered_date,
        sum(volume_usd) over (
            partition by user_id order by activity_date
            range between interval '{{ volume_days - 1 }} days' preceding and current row
        ) as volume_window_usd,
        max(active) over (
            partition by user_id order by activity_date
            range between interval '{{ active_days - 1 }} days' preceding and current row
        ) as active_in_window
    from user_points
),

{%- endif %}

evaluated as (
    select
        user_id,
        activity_date,
        case
            when rich = 1 or volume_window_usd >= {{ var('hnw_volume_30d_usd') }}
                then 'high_net_worth'
            when activity_date - registered_date < {{ var('new_user_days') }} then 'new'
            when active_in_window = 1 then 'active'
            else 'dormant'
        end as tier
    from windowed
    where candidate = 1
        and registered_date is not null
        and activity_date >= {{ from_day }}
        and activity_date >= registered_date
        and activity_date <= (select as_of.as_of_date from as_of)
),

-- a user's tier before their first day evaluated: their last change stored (the pre-hook has
-- deleted those from that day on), sequenced with the evaluations (a union, not a join: see
-- points)
stored_tiers as (
    {% if is_incremental() -%}
    select distinct on (user_id) user_id, valid_from as activity_date, tier
    from {{ this }}
    where user_id in (select candidate_users.user_id from candidate_users)
    order by user_id, valid_from desc
    {%- else -%}
    select null::text as user_id, null::date as activity_date, null::text as tier
    where false
    {%- endif %}
),

sequence as (
    select user_id, activity_date, tier, 0 as is_stored from evaluated
    union all
    select user_id, activity_date, tier, 1 as is_stored from stored_tiers
),

sequenced as (
    select
        user_id,
        activity_date,
        tier,
        is_stored,
        lag(tier) over (partition by user_id order by activity_date) as previous_tier
    from sequence
),

tier_changes as (
    select
        user_id::text as user_id,
        activity_date::date as valid_from,
        tier::text as tier,
        previous_tier::text as from_tier
    from sequenced
    where is_stored = 0 and previous_tier is distinct from tier
)

select * from tier_changes
order by valid_from
