-- pairs of users (user_a < user_b) sharing a sign-up device or IP in their latest state.
-- The only model downstream of staging that reads device_id / signup_ip; it passes on
-- which of the two is shared, never the values.
with users as (
    select user_id, device_id, signup_ip from {{ ref('stg_crm__users') }}
),

shared_device as (
    select a.user_id as user_a, b.user_id as user_b
    from users as a
    inner join users as b on a.device_id = b.device_id and a.user_id < b.user_id
),

shared_ip as (
    select a.user_id as user_a, b.user_id as user_b
    from users as a
    inner join users as b on a.signup_ip = b.signup_ip and a.user_id < b.user_id
),

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
