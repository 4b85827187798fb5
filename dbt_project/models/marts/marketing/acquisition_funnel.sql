-- registrations per day and channel (dense: every day x the 7 channels) and how many
-- reached each step within funnel_window_hours (inclusive) of registered_at
{%- set window = "interval '" ~ var('funnel_window_hours') ~ " hours'" %}

with days as (
    select activity_date, as_of_date from {{ ref('int_days') }}
),

channels as (
    select acquisition_channel
    from {{ values_relation(var('acquisition_channels'), 'acquisition_channel') }}
),

funnel_steps as (
    select
        registered_date,
        acquisition_channel,
        registered_at,
        first_kyc_approved_at - registered_at between interval '0' and {{ window }}
            as kyc_in_window,
        first_deposit_at - registered_at between interval '0' and {{ window }} as deposit_in_window,
        first_trade_at - registered_at between interval '0' and {{ window }} as trade_in_window,
        first_trade_at
    from {{ ref('int_users_funnel_steps') }}
),

funnel_counts as (
    select
        registered_date,
        acquisition_channel,
        count(*) as registered_users,
        count(*) filter (where kyc_in_window) as kyc_approved_users,
        count(*) filter (where deposit_in_window) as deposited_users,
        count(*) filter (where trade_in_window) as traded_users,
        {{ median_hours('registered_at', 'first_trade_at', 'trade_in_window') }}
            as median_hours_to_first_trade
    from funnel_steps
    group by 1, 2
),

funnel as (
    select
        days.activity_date::date as registration_date,
        channels.acquisition_channel::text as acquisition_channel,
        coalesce(funnel_counts.registered_users, 0)::bigint as registered_users,
        coalesce(funnel_counts.kyc_approved_users, 0)::bigint as kyc_approved_users,
        coalesce(funnel_counts.deposited_users, 0)::bigint as deposited_users,
        coalesce(funnel_counts.traded_users, 0)::bigint as traded_users,
        trim_scale(
            funnel_counts.kyc_approved_users::numeric / nullif(funnel_counts.registered_users, 0)
        )::numeric as kyc_rate,
        trim_scale(
            funnel_counts.deposited_users::numeric / nullif(funnel_counts.registered_users, 0)
        )::numeric as deposit_rate,
        trim_scale(
            funnel_counts.traded_users::numeric / nullif(funnel_counts.registered_users, 0)
        )::numeric as trade_rate,
        trim_scale(funnel_counts.median_hours_to_first_trade)::numeric
            as median_hours_to_first_trade,
        (days.activity_date <= days.as_of_date - {{ var('funnel_complete_days') }})::boolean
            as is_complete
    from days
    cross join channels
    left join funnel_counts
        on days.activity_date = funnel_counts.registered_date
        and channels.acquisition_channel = funnel_counts.acquisition_channel
)

select * from funnel
