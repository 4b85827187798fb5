{{ campaign_days_config(['country_campaigns', 'enrolled_campaigns']) }}

-- depends_on: {{ ref('stg_crm__campaigns') }}, {{ ref('int_campaign_windows') }}
-- depends_on: {{ ref('int_user_product_daily') }} (its pre-hook: the days the movers traded)
-- per started campaign and day of its windows, the volume and fees on the campaign's line of
-- its base users whose latest country it excludes, and of those of them who enrolled
-- (enrolled_*): the sums of int_campaign_excluded_trading, their trading per user. A user
-- moving into or out of an excluded country recomputes the days they traded, an enrollment the
-- campaign's days, from those rows alone
with missing_days as (
    {{ missing_campaign_days() }}
),

member_trading as (
    select
        trading.campaign_id,
        trading.activity_date,
        sum(trading.volume_usd) as volume_usd,
        sum(trading.fees_usd) as fees_usd,
        sum(trading.volume_usd) filter (where trading.enrolled) as enrolled_volume_usd,
        sum(trading.fees_usd) filter (where trading.enrolled) as enrolled_fees_usd
    from {{ ref('int_campaign_excluded_trading') }} as trading
    inner join missing_days
        on trading.campaign_id = missing_days.campaign_id
        and trading.activity_date = missing_days.activity_date
    group by trading.campaign_id, trading.activity_date
)

select
    missing_days.campaign_id::text as campaign_id,
    missing_days.activity_date::date as activity_date,
    coalesce(member_trading.volume_usd, 0)::numeric as volume_usd,
    coalesce(member_trading.fees_usd, 0)::numeric as fees_usd,
    coalesce(member_trading.enrolled_volume_usd, 0)::numeric as enrolled_volume_usd,
    coalesce(member_trading.enrolled_fees_usd, 0)::numeric as enrolled_fees_usd
from missing_days
left join member_trading
    on missing_days.campaign_id = member_trading.campaign_id
    and missing_days.activity_date = member_trading.activity_date
order by activity_date
