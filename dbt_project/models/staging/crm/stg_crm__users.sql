-- latest state of each user; e-mail and phone stop here, device and IP go on only to
-- int_user_links (linked-account and referral-ring detection)
with users as (
    {{ dedup(source('crm', 'users'), ['user_id'], updated_at='updated_at') }}
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
    updated_at
from users
