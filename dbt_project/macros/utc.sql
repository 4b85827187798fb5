{#- The UTC calendar day of a timestamptz, whatever the session time zone. -#}
{% macro utc_date(column) -%}
    (({{ column }}) at time zone 'UTC')::date
{%- endmacro %}

{#- Exact fractional hours / minutes between two timestamptz values. -#}
{% macro hours_between(start_at, end_at) -%}
    (extract(epoch from (({{ end_at }}) - ({{ start_at }}))) / 3600)
{%- endmacro %}

{#- Medians of a duration: percentile_cont over an interval keeps microsecond precision. -#}
{% macro median_hours(start_at, end_at) -%}
    (extract(epoch from percentile_cont(0.5) within group (order by ({{ end_at }}) - ({{ start_at }}))) / 3600)
{%- endmacro %}

{% macro median_minutes(start_at, end_at) -%}
    (extract(epoch from percentile_cont(0.5) within group (order by ({{ end_at }}) - ({{ start_at }}))) / 60)
{%- endmacro %}
