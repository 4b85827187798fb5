-- difference-in-differences per started campaign: participants (enrolled users) against
-- controls, during S..E against the n days before S (members and their trading come from
-- int_campaign_trading), and the cost: every reward paid by the as-of date
with as_of as (
    select max(as_of_date) as as_of_date from {{ ref('int_days') }}
),

campaigns as (
    select * from {{ ref('int_campaign_windows') }}
),

trading as (
    select * from {{ ref('int_campaign_trading') }}
),

rewards as (
    select rewards.campaign_id, sum(rewards.amount_usd) as cost_usd
    from {{ ref('stg_crm__rewards') }} as rewards
    where rewards.paid_date <= (select as_of.as_of_date from as_of)
    group by 1
),

campaign_totals as (
    select
        campaigns.*,
        trading.participants,
        trading.controls,
        trading.participant_volume_pre_usd,
        trading.participant_volume_during_usd,
        trading.participant_fees_pre_usd,
        trading.participant_fees_during_usd,
        trading.control_volume_pre_usd,
        trading.control_volume_during_usd,
        trading.control_fees_pre_usd,
        trading.control_fees_during_usd,
        coalesce(rewards.cost_usd, 0) as cost_usd
    from campaigns
    inner join trading on campaigns.campaign_id = trading.campaign_id
    left join rewards on campaigns.campaign_id = rewards.campaign_id
),

campaign_effects as (
    select
        *,
        case
            when participants > 0 and controls > 0
                then
                    participants * (
                        (participant_volume_during_usd - participant_volume_pre_usd) / participants
                        - (control_volume_during_usd - control_volume_pre_usd) / controls
                    )
        end as incremental_volume_usd,
        case
            when participants > 0 and controls > 0
                then
                    participants * (
                        (participant_fees_during_usd - participant_fees_pre_usd) / participants
                        - (control_fees_during_usd - control_fees_pre_usd) / controls
                    )
        end as incremental_fees_usd
    from campaign_totals
),

campaign_performance as (
    select
        campaign_id::text as campaign_id,
        campaign_type::text as campaign_type,
        product_line::text as product_line,
        start_date::date as start_date,
        end_date::date as end_date,
        is_complete::boolean as is_complete,
        participants::bigint as participants,
        controls::bigint as controls,
        participant_volume_pre_usd::numeric as participant_volume_pre_usd,
        participant_volume_during_usd::numeric as participant_volume_during_usd,
        control_volume_pre_usd::numeric as control_volume_pre_usd,
        control_volume_during_usd::numeric as control_volume_during_usd,
        trim_scale(incremental_volume_usd)::numeric as incremental_volume_usd,
        trim_scale(incremental_fees_usd)::numeric as incremental_fees_usd,
        cost_usd::numeric as cost_usd,
        trim_scale((incremental_fees_usd - cost_usd) / nullif(cost_usd, 0))::numeric as roi,
        target_tier::text as target_tier,
        window_days::integer as window_days
    from campaign_effects
)

select * from campaign_performance
