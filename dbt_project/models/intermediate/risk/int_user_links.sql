{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook=["{{ delete_relinked_links() }}"],
    indexes=[{'columns': ['user_a', 'user_b'], 'unique': True}, {'columns': ['user_b']}],
) }}
{%- set relinked = window_var('relinked_users', []) if is_incremental() else none %}

-- pairs of users (user_a < user_b) sharing a sign-up device or IP in their latest state.
-- The only model downstream of staging that reads device_id / signup_ip; it passes on
-- which of the two is shared, never the values. Incremental by user: only the new users and
-- those whose device or IP changed (var relinked_users) gain or lose pairs; the pre-hook drops
-- their pairs and the select pairs them again with every user
with users as (
    select user_id, device_id, signup_ip from {{ ref('stg_crm__users') }}
),
{%- for shared, column in [('device', 'device_id'), ('ip', 'signup_ip')] %}
{%- if relinked is none %}

shared_{{ shared }} as (
    select a.user_id as user_a, b.user_id as user_b
    from users as a
    inner join users as b on a.{{ column }} = b.{{ column }} and a.user_id < b.user_id
),
{%- else %}

-- a pair of two relinked users is found from either side: once each
shared_{{ shared }} as (
    select distinct
        least(a.user_id, b.user_id) as user_a,
        greatest(a.user_id, b.user_id) as user_b
    from users as a
    inner join users as b on a.{{ column }} = b.{{ column }} and a.user_id <> b.user_id
    where a.user_id in {{ text_list(relinked) }}
),
{%- endif %}
{%- endfor %}

links as (
    select
        coalesce(shared_device.user_a, shared_ip.user_a) as user_a,
        coalesce(shared_device.user_b, shared_ip.user_b) as user_b,
        shared_device.user_a is not null as shares_device,
        shared_ip.user_a is not null as shares_ip
    from shared_device
    full outer join shared_ip
        on shared_device.user_a = shared_ip.user_a and shared_device.user_b = shared_ip.user_b
)

select * from links
