-- MetricFlow's day time spine (dbt's `time_spine:` config in its YAML): one row per day over
-- a fixed, generous range, so any query window of the semantic layer finds its days
with days as (
    select day_series.day::date as date_day
    from
        generate_series(
            cast('{{ var("time_spine_start") }}' as date)::timestamp,
            cast('{{ var("time_spine_end") }}' as date)::timestamp,
            interval '1 day'
        ) as day_series (day)
)

select * from days
