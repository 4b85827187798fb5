-- the day spine: every UTC day from the first day with data (earliest dt loaded) to the
-- as-of date (greatest dt loaded)
with bounds as (
    select
        min(dt) as first_date,
        max(dt) as as_of_date
    from {{ ref('stg_audit__partitions') }}
),

days as (
    select
        day_series.day::date as activity_date,
        bounds.first_date,
        bounds.as_of_date
    from bounds
    cross join lateral generate_series(
        bounds.first_date::timestamp, bounds.as_of_date::timestamp, interval '1 day'
    ) as day_series (day)
)

select
    activity_date,
    first_date,
    as_of_date
from days
