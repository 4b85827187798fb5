{{ window_config('valid_from', indexes=[{'columns': ['user_id', 'valid_from'], 'unique': True}]) }}
{%- set from_day = window_start() %}
{%- set volume_days = var('hnw_volume_window_days') %}
{%- set active_days = var('active_window_days') %}
{%- set lookback = [volume_days, active_days] | max %}

-- one row per registered user and day their tier changes, from their registration day on
-- (KPIS.md "User tier", first match wins: high_net_worth, new, active, dormant). A tier
-- depends on the equity of the day, the user volume and activity of the last 30 days and the
-- registration, which change only on: the registration day r and r + new_user_days; an
-- activity day a and the days it leaves the volume and activity windows; a day with
-- high-net-worth equity h and h + 1. So the tier is evaluated on those days only and kept
-- where it changes (int_user_tier_spells turns the changes into spells): no user x day grid.
-- Incremental by day: the window's changes are found again; the tier the day before the
-- window (which nothing in the window can change) is the last change stored before it
with as_of as (
    select max(as_of_date) as as_of_date from {{ ref('int_days') }}
),

users as (
    select user_id, registered_date
    from {{ ref('stg_crm__users') }}
    where registered_date <= (select as_of_date from as_of)
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

candidate_days as (
    select user_id, registered_date as activity_date from users
    union all
    select user_id, registered_date + {{ var('new_user_days') }} from users
    union all
    select user_id, activity_date from activity
    union all
    select user_id, activity_date + {{ active_days }} from activity where is_active
    union all
    select user_id, activity_date + {{ volume_days }} from activity where volume_usd <> 0
    union all
    select user_id, activity_date from rich_days
    union all
    select user_id, activity_date + 1 from rich_days
),

points as (
    select user_id, activity_date, volume_usd, case when is_active then 1 else 0 end as active,
        0 as rich, 0 as candidate
    from activity
    union all
    select user_id, activity_date, 0, 0, 1, 0 from rich_days
    union all
    select user_id, activity_date, 0, 0, 0, 1 from candidate_days
    where activity_date >= {{ from_day }}
),

user_points as (
    select
        user_id,
        activity_date,
        sum(volume_usd) as volume_usd,
        max(active) as active,
        max(rich) as rich,
        max(candidate) as candidate
    from points
    group by 1, 2
),

windowed as (
    select
        user_id,
        activity_date,
        rich,
        candidate,
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

evaluated as (
    select
        windowed.user_id,
        windowed.activity_date,
        case
            when windowed.rich = 1 or windowed.volume_window_usd >= {{ var('hnw_volume_30d_usd') }}
                then 'high_net_worth'
            when windowed.activity_date - users.registered_date < {{ var('new_user_days') }} then 'new'
            when windowed.active_in_window = 1 then 'active'
            else 'dormant'
        end as tier
    from windowed
    inner join users on windowed.user_id = users.user_id
    where windowed.candidate = 1
        and windowed.activity_date >= {{ from_day }}
        and windowed.activity_date >= users.registered_date
        and windowed.activity_date <= (select as_of_date from as_of)
),

stored_tiers as (
    {% if is_incremental() -%}
    select distinct on (user_id) user_id, tier
    from {{ this }}
    where valid_from < {{ from_day }}
    order by user_id, valid_from desc
    {%- else -%}
    select cast(null as text) as user_id, cast(null as text) as tier
    where false
    {%- endif %}
),

sequenced as (
    select
        evaluated.user_id,
        evaluated.activity_date,
        evaluated.tier,
        coalesce(
            lag(evaluated.tier) over (partition by evaluated.user_id order by evaluated.activity_date),
            stored_tiers.tier
        ) as previous_tier
    from evaluated
    left join stored_tiers on evaluated.user_id = stored_tiers.user_id
),

tier_changes as (
    select
        user_id::text as user_id,
        activity_date::date as valid_from,
        tier::text as tier,
        previous_tier::text as from_tier
    from sequenced
    where previous_tier is distinct from tier
)

select * from tier_changes
order by valid_from
