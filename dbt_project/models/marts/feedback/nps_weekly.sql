-- NPS per ISO week (Monday) and product line, plus 'all'; responses without a product
-- line count only in 'all'; the current partial week is included
with days as (
    select min(activity_date) as first_date, max(activity_date) as as_of_date
    from {{ ref('int_days') }}
),

responses as (
    select
        date_trunc('week', responses.submitted_date)::date as week_start,
        responses.product_line,
        responses.score
    from {{ ref('stg_feedback__survey_responses') }} as responses
    cross join days
    where responses.survey = 'nps'
        and responses.submitted_date between days.first_date and days.as_of_date
),

responses_with_all as (
    select week_start, product_line, score from responses
    where product_line is not null
    union all
    select week_start, 'all' as product_line, score from responses
),

nps as (
    select
        week_start::date as week_start,
        product_line::text as product_line,
        count(*)::bigint as responses,
        count(*) filter (where score >= 9)::bigint as promoters,
        count(*) filter (where score between 7 and 8)::bigint as passives,
        count(*) filter (where score <= 6)::bigint as detractors,
        trim_scale(
            100 * (count(*) filter (where score >= 9) - count(*) filter (where score <= 6))::numeric
            / count(*)
        )::numeric as nps
    from responses_with_all
    group by 1, 2
)

select * from nps
