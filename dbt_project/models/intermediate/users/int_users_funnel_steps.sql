-- each user's registration and first approved KYC event, first completed deposit and
-- first trade (earlier rejections and failed deposits are ignored)
with users as (
    select user_id, registered_at, registered_date, acquisition_channel
    from {{ ref('stg_crm__users') }}
),

first_kyc_approvals as (
    select user_id, min(event_at) as first_kyc_approved_at
    from {{ ref('stg_crm__kyc_events') }}
    where status = 'approved'
    group by 1
),

first_deposits as (
    select user_id, min(created_at) as first_deposit_at
    from {{ ref('stg_exchange__transfers') }}
    where direction = 'deposit' and status = 'completed'
    group by 1
),

first_trades as (
    select user_id, first_trade_at from {{ ref('int_user_first_trades') }}
),

funnel_steps as (
    select
        users.user_id,
        users.registered_at,
        users.registered_date,
        users.acquisition_channel,
        first_kyc_approvals.first_kyc_approved_at,
        first_deposits.first_deposit_at,
        first_trades.first_trade_at
    from users
    left join first_kyc_approvals on users.user_id = first_kyc_approvals.user_id
    left join first_deposits on users.user_id = first_deposits.user_id
    left join first_trades on users.user_id = first_trades.user_id
)

select * from funnel_steps
