{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='user_id',
    on_schema_change='fail',
    indexes=[{'columns': ['user_id'], 'unique': True}],
) }}
{%- set columns = 'user_id, registered_at, country, acquisition_channel, referrer_user_id,'
    ~ ' kyc_level, device_id, signup_ip, updated_at, _dt, _file, _line' %}

-- latest state of each user; e-mail and phone stop here, device and IP go on only to
-- int_user_links (linked-account and referral-ring detection). A table, not a view: a dozen
-- models and their tests read it every build, and each read of a view sorted every version
-- ever loaded. Incremental like stg_exchange__trades: a run weighs the versions loaded since
-- the last build against the one staged for their users (delete+insert by user_id); a
-- re-delivered or unloaded users partition rebuilds everything (exops.transform.window)
{{ staged_candidates(source('crm', 'users'), columns, ['user_id']) }},

users as (
    {{ dedup('candidates', ['user_id'], updated_at='updated_at') }}
)

select
    user_id,
    registered_at,
    {{ utc_date('registered_at') }} as registered_date,
    country,
    acquisition_channel,
    referrer_user_id,
    kyc_level,
    device_id,
    signup_ip,
    updated_at,
    _dt,
    _file,
    _line
from users
