{{ config(materialized='view') }}

-- every day of each started campaign's windows, S-n..E (int_campaign_windows), with the
-- campaign's line (null: all lines); the campaign day models add the ones they have no row for
with campaigns as (
    select campaign_id, product_line, pre_start_date, window_end_date
    from {{ ref('int_campaign_windows') }}
),

campaign_days as (
    select
        campaigns.campaign_id,
        campaigns.product_line,
        day_series.day::date as activity_date
    from campaigns
    cross join lateral generate_series(
        campaigns.pre_start_date::timestamp,
        campaigns.window_end_date::timestamp,
        interval '1 day'
    ) as day_series (day)
)

select * from campaign_days
