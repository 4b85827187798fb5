{{ config(
    materialized='table',
    indexes=[{'columns': ['user_id', 'valid_from'], 'unique': True}, {'columns': ['valid_to']}],
) }}

-- one row per user and run of days in one tier (valid_to: the day before the next change, or
-- the as-of date): the tier of a user on d is the spell with valid_from <= d <= valid_to. A
-- table, rebuilt every run from the changes (its current spells end on the as-of date): the
-- tier marts, the campaign controls and the dormant targets read it
with as_of as (
    select max(as_of_date) as as_of_date from {{ ref('int_days') }}
),

tier_changes as (
    select user_id, tier, from_tier, valid_from
    from {{ ref('int_user_tier_changes') }}
),

spells as (
    select
        tier_changes.user_id,
        tier_changes.tier,
        tier_changes.from_tier,
        tier_changes.valid_from,
        coalesce(
            lead(tier_changes.valid_from) over (
                partition by tier_changes.user_id order by tier_changes.valid_from
            ) - 1,
            as_of.as_of_date
        ) as valid_to
    from tier_changes
    cross join as_of
)

select * from spells
