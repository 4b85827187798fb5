-- one row per alert type, day and subject; details carry no personal data. The trade-based
-- alerts come from the incremental int_risk_trade_alerts; the others are small and computed
-- in full
with days as (
    select activity_date from {{ ref('int_days') }}
),

links as (
    select * from {{ ref('int_user_links') }}
),

trade_alerts as (
    select alert_type, alert_date, subject_id, metric_value, severity, details
    from {{ ref('int_risk_trade_alerts') }}
),

restricted_country_rewards as (
    select
        'restricted_country_reward' as alert_type,
        rewards.paid_date as alert_date,
        rewards.reward_id as subject_id,
        rewards.amount_usd as metric_value,
        'high' as severity,
        rewards.reward_type || ' of campaign ' || rewards.campaign_id
        || ' paid to a user in excluded country ' || users.country as details
    from {{ ref('stg_crm__rewards') }} as rewards
    inner join {{ ref('stg_crm__users') }} as users on rewards.user_id = users.user_id
    inner join {{ ref('stg_crm__campaigns') }} as campaigns
        on rewards.campaign_id = campaigns.campaign_id
    where users.country = any(campaigns.excluded_countries)
),

product_volume_windows as (
    select
        product_id,
        activity_date,
        volume_usd,
        count(*) over previous_days as previous_days,
        avg(volume_usd) over previous_days as previous_mean,
        stddev_samp(volume_usd) over previous_days as previous_stddev
    from {{ ref('product_daily_kpis') }}
    window previous_days as (
        partition by product_id order by activity_date
        range between interval '{{ var("spike_window_days") }} days' preceding
        and interval '1 day' preceding
    )
),

volume_spikes as (
    select
        'volume_spike' as alert_type,
        activity_date as alert_date,
        product_id as subject_id,
        volume_usd as metric_value,
        case
            when volume_usd > previous_mean + 2 * {{ var('spike_stddevs') }} * previous_stddev
                then 'high'
            else 'medium'
        end as severity,
        'volume ' || round(volume_usd, 2) || ' USD vs mean ' || round(previous_mean, 2)
        || ' and stddev ' || round(previous_stddev, 2)
        || ' over the previous ' || previous_days || ' days' as details
    from product_volume_windows
    where previous_days >= {{ var('spike_min_days') }}
        and volume_usd > previous_mean + {{ var('spike_stddevs') }} * previous_stddev
        and volume_usd > {{ var('spike_mean_multiple') }} * previous_mean
),

referees as (
    select user_id, referrer_user_id, registered_date
    from {{ ref('stg_crm__users') }}
    where referrer_user_id is not null
),

-- a referee's partners: its referrer, or another referee of the same referrer, when they
-- share device or IP; the referee is linked once it and a partner have both registered
link_ends as (
    select user_a as user_id, user_b as partner_id from links
    union all
    select user_b, user_a from links
),

partner_dates as (
    select referees.referrer_user_id, referees.user_id, referees.registered_date as partner_date
    from link_ends
    inner join referees
        on link_ends.user_id = referees.user_id
        and link_ends.partner_id = referees.referrer_user_id
    union all
    select referees.referrer_user_id, referees.user_id, others.registered_date
    from link_ends
    inner join referees on link_ends.user_id = referees.user_id
    inner join referees as others
        on link_ends.partner_id = others.user_id
        and referees.referrer_user_id = others.referrer_user_id
),

referee_link_dates as (
    select
        partner_dates.referrer_user_id,
        partner_dates.user_id,
        greatest(min(referees.registered_date), min(partner_dates.partner_date)) as linked_date
    from partner_dates
    inner join referees on partner_dates.user_id = referees.user_id
    group by 1, 2
),

ring_counts as (
    select distinct
        referrer_user_id,
        linked_date,
        count(*) over (partition by referrer_user_id order by linked_date) as linked_referees
    from referee_link_dates
    where linked_date is not null
),

referral_rings as (
    select distinct on (referrer_user_id)
        'referral_ring' as alert_type,
        linked_date as alert_date,
        referrer_user_id as subject_id,
        linked_referees::numeric as metric_value,
        case
            when linked_referees >= 2 * {{ var('referral_ring_size') }} then 'high'
            else 'medium'
        end as severity,
        linked_referees || ' referees sharing a device or IP with the referrer or each other'
            as details
    from ring_counts
    where linked_referees >= {{ var('referral_ring_size') }}
    order by referrer_user_id, linked_date
),

alerts as (
    select * from trade_alerts
    union all
    select * from restricted_country_rewards
    union all
    select * from volume_spikes
    union all
    select * from referral_rings
),

alerts_in_spine as (
    select
        alerts.alert_type::text as alert_type,
        alerts.alert_date::date as alert_date,
        alerts.subject_id::text as subject_id,
        alerts.metric_value::numeric as metric_value,
        alerts.severity::text as severity,
        alerts.details::text as details
    from alerts
    inner join days on alerts.alert_date = days.activity_date
)

select * from alerts_in_spine
