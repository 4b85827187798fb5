-- support tickets by creation day, category and channel (dense: every day x 8 categories
-- x 4 channels), from each ticket's latest state
with days as (
    select activity_date from {{ ref('int_days') }}
),

categories as (
    select category from {{ values_relation(var('ticket_categories'), 'category') }}
),

channels as (
    select channel from {{ values_relation(var('ticket_channels'), 'channel') }}
),

ticket_counts as (
    select
        created_date,
        category,
        channel,
        count(*) as tickets,
        count(*) filter (where resolved_at is not null) as resolved_tickets,
        count(*) filter (where resolved_at - created_at <= interval '24 hours')
            as resolved_within_24h,
        {{ median_minutes('created_at', 'first_response_at', 'first_response_at is not null') }}
            as median_first_response_minutes,
        avg(csat::numeric) as avg_csat,
        count(csat) as csat_responses
    from {{ ref('stg_feedback__tickets') }}
    group by 1, 2, 3
),

feedback as (
    select
        days.activity_date::date as created_date,
        categories.category::text as category,
        channels.channel::text as channel,
        coalesce(ticket_counts.tickets, 0)::bigint as tickets,
        coalesce(ticket_counts.resolved_tickets, 0)::bigint as resolved_tickets,
        coalesce(ticket_counts.resolved_within_24h, 0)::bigint as resolved_within_24h,
        trim_scale(ticket_counts.median_first_response_minutes)::numeric
            as median_first_response_minutes,
        trim_scale(ticket_counts.avg_csat)::numeric as avg_csat,
        coalesce(ticket_counts.csat_responses, 0)::bigint as csat_responses
    from days
    cross join categories
    cross join channels
    left join ticket_counts
        on days.activity_date = ticket_counts.created_date
        and categories.category = ticket_counts.category
        and channels.channel = ticket_counts.channel
)

select * from feedback
