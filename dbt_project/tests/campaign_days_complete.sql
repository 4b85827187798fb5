-- every day of every started campaign's windows has its participants' and controls' trading:
-- int_campaign_trading_daily joins the three campaign day models (inner joins), so a day one
-- of them lacked would drop out of the campaign's sums
select
    campaign_days.campaign_id,
    campaign_days.activity_date
from {{ ref('int_campaign_days') }} as campaign_days
left join {{ ref('int_campaign_trading_daily') }} as trading
    on campaign_days.campaign_id = trading.campaign_id
    and campaign_days.activity_date = trading.activity_date
where trading.campaign_id is null
