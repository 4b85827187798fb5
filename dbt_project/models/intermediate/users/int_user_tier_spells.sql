{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook=["{{ delete_changed_spells() }}"],
    indexes=[{'columns': ['user_id', 'valid_from'], 'unique': True}, {'columns': ['valid_to']}],
) }}

-- one row per user and run of days in one tier (valid_to: the day before the next change, or
-- open_end() for the current spell): the tier of a user on d (up to the as-of date) is the
-- spell with valid_from <= d <= valid_to. The tier marts, the campaign controls and the
-- dormant targets read it. Incremental by user: the pre-hook drops the spells of the users
-- whose changes the window rebuilt (a change there before this build or after it), and the
-- select brings back every user left without a spell (each user's changes start with their
-- registration, so a user with changes has spells)
with tier_changes as (
    select user_id, tier, from_tier, valid_from
    from {{ ref('int_user_tier_changes') }}
    {%- if is_incremental() %}
    where user_id not in (select known.user_id from {{ this }} as known)
    {%- endif %}
),

spells as (
    select
        user_id,
        tier,
        from_tier,
        valid_from,
        coalesce(
            lead(valid_from) over (partition by user_id order by valid_from) - 1,
            {{ open_end() }}
        ) as valid_to
    from tier_changes
)

select * from spells
