{{ config(materialized='view') }}

-- one row per campaign started by the as-of date, with its windows (KPIS.md): S = start date,
-- E = min(end date, as-of), n = E - S + 1; during S..E, pre S-n..S-1
with as_of as (
    select max(as_of_date) as as_of_date from {{ ref('int_days') }}
),

campaign_windows as (
    select
        campaigns.campaign_id,
        campaigns.campaign_type,
        campaigns.product_line,
        campaigns.target_tier,
        campaigns.excluded_countries,
        campaigns.start_date,
        campaigns.end_date,
        campaigns.end_date <= as_of.as_of_date as is_complete,
        least(campaigns.end_date, as_of.as_of_date) as window_end_date,
        least(campaigns.end_date, as_of.as_of_date) - campaigns.start_date + 1 as window_days,
        campaigns.start_date
        - (least(campaigns.end_date, as_of.as_of_date) - campaigns.start_date + 1) as pre_start_date
    from {{ ref('stg_crm__campaigns') }} as campaigns
    cross join as_of
    where campaigns.start_date <= as_of.as_of_date
)

select * from campaign_windows
