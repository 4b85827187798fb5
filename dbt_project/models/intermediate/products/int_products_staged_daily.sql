-- one row per product and day from its first lifecycle event, with its stage: decided by
-- the latest event on or before the day (same-day events: greatest event_at, then
-- event_id); a delisted product has its last row on the delisting day
with days as (
    select activity_date, as_of_date from {{ ref('int_days') }}
),

events as (
    select product_id, event_id, event_type, event_at, event_date
    from {{ ref('stg_exchange__product_events') }}
    where event_date <= (select max(days.activity_date) from days)
),

deciding_events as (
    select distinct on (product_id, event_date)
        product_id,
        event_date,
        event_type
    from events
    order by product_id asc, event_date asc, event_at desc, event_id desc
),

product_first_events as (
    select product_id, min(event_date) as first_event_date
    from events
    group by 1
),

product_days as (
    select product_first_events.product_id, days.activity_date
    from product_first_events
    inner join days on product_first_events.first_event_date <= days.activity_date
),

product_days_with_event as (
    select
        product_days.product_id,
        product_days.activity_date,
        latest_event.event_type,
        latest_event.event_date
    from product_days
    cross join lateral (
        select deciding_events.event_type, deciding_events.event_date
        from deciding_events
        where deciding_events.product_id = product_days.product_id
            and deciding_events.event_date <= product_days.activity_date
        order by deciding_events.event_date desc
        limit 1
    ) as latest_event
),

products as (
    select product_id, product_line from {{ ref('stg_exchange__products') }}
),

product_stages as (
    select
        product_days.product_id,
        products.product_line,
        product_days.activity_date,
        case product_days.event_type
            when 'announced' then 'launch_preparation'
            when 'listed'
                then
                    case
                        when product_days.activity_date - product_days.event_date
                            < {{ var('cold_start_days') }}
                            then 'cold_start'
                        else 'daily_operations'
                    end
            when 'iteration_released'
                then
                    case
                        when product_days.activity_date - product_days.event_date
                            < {{ var('iteration_days') }}
                            then 'iteration'
                        else 'daily_operations'
                    end
            when 'delisting_announced' then 'delisting'
            when 'delisted' then 'delisted'
        end as lifecycle_stage,
        product_days.event_type as latest_event_type,
        product_days.event_date as latest_event_date
    from product_days_with_event as product_days
    left join products on product_days.product_id = products.product_id
    where product_days.event_type <> 'delisted'
        or product_days.event_date = product_days.activity_date
)

select * from product_stages
