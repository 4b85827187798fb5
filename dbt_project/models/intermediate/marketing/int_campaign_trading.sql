-- members and their trading per started campaign: participants and controls
-- (int_campaign_members), their volume and fees during S..E and in the n days before S
-- (int_campaign_trading_daily); campaign_performance turns them into
-- differences-in-differences. Rebuilt every run from those two compact tables
with campaigns as (
    select campaign_id, start_date, pre_start_date, window_end_date, window_days
    from {{ ref('int_campaign_windows') }}
),

member_counts as (
    select
        campaign_id,
        count(*) filter (where member_role = 'participant') as participants,
        count(*) filter (where member_role = 'control') as controls
    from {{ ref('int_campaign_members') }}
    group by 1
),

trading as (
    select
        daily.campaign_id,
        sum(daily.participant_volume_usd) filter (where daily.activity_date < campaigns.start_date)
            as participant_volume_pre_usd,
        sum(daily.participant_volume_usd) filter (where daily.activity_date >= campaigns.start_date)
            as participant_volume_during_usd,
        sum(daily.participant_fees_usd) filter (where daily.activity_date < campaigns.start_date)
            as participant_fees_pre_usd,
        sum(daily.participant_fees_usd) filter (where daily.activity_date >= campaigns.start_date)
            as participant_fees_during_usd,
        sum(daily.control_volume_usd) filter (where daily.activity_date < campaigns.start_date)
            as control_volume_pre_usd,
        sum(daily.control_volume_usd) filter (where daily.activity_date >= campaigns.start_date)
            as control_volume_during_usd,
        sum(daily.control_fees_usd) filter (where daily.activity_date < campaigns.start_date)
            as control_fees_pre_usd,
        sum(daily.control_fees_usd) filter (where daily.activity_date >= campaigns.start_date)
            as control_fees_during_usd
    from {{ ref('int_campaign_trading_daily') }} as daily
    inner join campaigns
        on daily.campaign_id = campaigns.campaign_id
        and daily.activity_date between campaigns.pre_start_date and campaigns.window_end_date
    group by 1
),

campaign_trading as (
    select
        campaigns.campaign_id::text as campaign_id,
        campaigns.window_end_date::date as window_end_date,
        campaigns.window_days::integer as window_days,
        coalesce(member_counts.participants, 0)::bigint as participants,
        coalesce(member_counts.controls, 0)::bigint as controls,
        coalesce(trading.participant_volume_pre_usd, 0)::numeric as participant_volume_pre_usd,
        coalesce(trading.participant_volume_during_usd, 0)::numeric
            as participant_volume_during_usd,
        coalesce(trading.participant_fees_pre_usd, 0)::numeric as participant_fees_pre_usd,
        coalesce(trading.participant_fees_during_usd, 0)::numeric as participant_fees_during_usd,
        coalesce(trading.control_volume_pre_usd, 0)::numeric as control_volume_pre_usd,
        coalesce(trading.control_volume_during_usd, 0)::numeric as control_volume_during_usd,
        coalesce(trading.control_fees_pre_usd, 0)::numeric as control_fees_pre_usd,
        coalesce(trading.control_fees_during_usd, 0)::numeric as control_fees_during_usd
    from campaigns
    left join member_counts on campaigns.campaign_id = member_counts.campaign_id
    left join trading on campaigns.campaign_id = trading.campaign_id
)

select * from campaign_trading
