{{ window_config(
    'alert_date', pre_hooks=["{{ delete_relinked_pair_alerts() }}"]
) }}
{%- set from_day = window_start() %}
{%- set relinked = window_var('relinked_users', []) if is_incremental() else [] %}

-- the trade-based risk alerts (self_trade, linked_account_trade, trade_before_kyc), one row
-- per alert type, day and subject. Incremental by day: a day's alerts depend on that day's
-- trades and on the users' first approved KYC event (a late one rebuilds from its day); the
-- linked-account alerts also on the users' latest device and IP, so a new or relinked user's
-- pairs are rebuilt over all their days (their trades found through the user indexes)
with days as (
    select activity_date from {{ ref('int_days') }}
    {%- if not relinked %}
    where activity_date >= {{ from_day }}
    {%- endif %}
),

trades as (
    select * from {{ ref('int_trades_priced') }}
    where executed_date >= {{ from_day }}
    {%- if relinked %}
    union all
    select * from {{ ref('int_trades_priced') }}
    where executed_date < {{ from_day }}
        and (
            maker_user_id in {{ text_list(relinked) }}
            or taker_user_id in {{ text_list(relinked) }}
        )
    {%- endif %}
),

user_trades as (
    select * from {{ ref('int_user_trades') }}
    where executed_date >= {{ from_day }}
),

links as (
    select * from {{ ref('int_user_links') }}
),

-- counted in the user x product x day rollup (so the trades are read once here, for the links)
self_trades as (
    select
        'self_trade' as alert_type,
        activity_date as alert_date,
        user_id as subject_id,
        sum(self_trade_volume_usd) as metric_value,
        case
            when sum(self_trade_count) >= 10 then 'high'
            when sum(self_trade_count) >= 3 then 'medium'
            else 'low'
        end as severity,
        sum(self_trade_count) || ' self-trade(s) where maker = taker' as details
    from {{ ref('int_user_product_daily') }}
    where self_trade_count > 0 and activity_date >= {{ from_day }}
    group by 2, 3
),

linked_account_trades as (
    select
        'linked_account_trade' as alert_type,
        trades.executed_date as alert_date,
        links.user_a || '|' || links.user_b as subject_id,
        sum(trades.volume_usd) as metric_value,
        case when links.shares_device and links.shares_ip then 'high' else 'medium' end as severity,
        count(*) || ' trade(s) between accounts sharing '
        || case
            when links.shares_device and links.shares_ip then 'device and IP'
            when links.shares_device then 'device'
            else 'IP'
        end as details
    from trades
    inner join links
        on least(trades.maker_user_id, trades.taker_user_id) = links.user_a
        and greatest(trades.maker_user_id, trades.taker_user_id) = links.user_b
    where not trades.is_self_trade
    {%- if relinked %}
        and (
            trades.executed_date >= {{ from_day }}
            or links.user_a in {{ text_list(relinked) }}
            or links.user_b in {{ text_list(relinked) }}
        )
    {%- endif %}
    group by 2, 3, links.shares_device, links.shares_ip
),

first_kyc_approvals as (
    select user_id, min(event_at) as first_kyc_approved_at
    from {{ ref('stg_crm__kyc_events') }}
    where status = 'approved'
    group by 1
),

trades_before_kyc as (
    select
        'trade_before_kyc' as alert_type,
        user_trades.executed_date as alert_date,
        user_trades.user_id as subject_id,
        count(*)::numeric as metric_value,
        -- high: not approved by the end of that day; medium: approved later that same day
        -- (decided by that day alone, so an approval arriving later changes no older day)
        case
            when
                bool_or(
                    first_kyc_approvals.user_id is null
                    or {{ utc_date('first_kyc_approvals.first_kyc_approved_at') }}
                    > user_trades.executed_date
                )
                then 'high'
            else 'medium'
        end as severity,
        count(*) || ' trade(s) before the first approved KYC event' as details
    from user_trades
    left join first_kyc_approvals on user_trades.user_id = first_kyc_approvals.user_id
    where first_kyc_approvals.user_id is null
        or user_trades.executed_at < first_kyc_approvals.first_kyc_approved_at
    group by 2, 3
),

alerts as (
    select * from self_trades
    union all
    select * from linked_account_trades
    union all
    select * from trades_before_kyc
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
order by alert_date
