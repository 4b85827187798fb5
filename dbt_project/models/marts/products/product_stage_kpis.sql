-- one row per uninterrupted run of one lifecycle stage of one product
with product_days as (
    select * from {{ ref('product_daily_kpis') }}
),

as_of as (
    select max(as_of_date) as as_of_date from {{ ref('int_days') }}
),

product_days_numbered as (
    select
        product_days.*,
        -- consecutive days of one stage share this anchor; a stage change or a gap breaks it
        product_days.activity_date - (row_number() over (
            partition by product_days.product_id, product_days.lifecycle_stage
            order by product_days.activity_date
        ))::integer as run_anchor
    from product_days
),

stage_runs as (
    select
        product_id::text as product_id,
        max(product_line)::text as product_line,
        lifecycle_stage::text as lifecycle_stage,
        min(activity_date)::date as stage_start_date,
        max(activity_date)::date as stage_end_date,
        count(*)::bigint as days_in_stage,
        sum(volume_usd)::numeric as volume_usd,
        trim_scale(sum(volume_usd) / count(*))::numeric as avg_daily_volume_usd,
        trim_scale(sum(traders)::numeric / count(*))::numeric as avg_daily_traders,
        sum(new_traders)::bigint as new_traders,
        sum(fees_usd)::numeric as fees_usd
    from product_days_numbered
    group by product_id, lifecycle_stage, run_anchor
),

stage_runs_flagged as (
    select
        stage_runs.*,
        (stage_runs.stage_end_date = as_of.as_of_date)::boolean as is_current
    from stage_runs
    cross join as_of
)

select * from stage_runs_flagged
