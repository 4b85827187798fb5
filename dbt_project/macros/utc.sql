{#- The UTC calendar day of a timestamptz, whatever the session time zone. -#}
{% macro utc_date(column) -%}
    (({{ column }}) at time zone 'UTC')::date
{%- endmacro %}

{#- Exact fractional hours / minutes between two timestamptz values. -#}
{% macro hours_between(start_at, end_at) -%}
    (extract(epoch from (({{ end_at }}) - ({{ start_at }}))) / 3600)
{%- endmacro %}

{#- Median of a duration in hours / minutes: percentile_cont over an interval keeps
    microsecond precision (over a number it would go through double precision). -#}
{% macro median_hours(start_at, end_at, where='true') -%}
    (extract(epoch from percentile_cont(0.5) within group (order by ({{ end_at }}) - ({{ start_at }})) filter (where {{ where }})) / 3600)
{%- endmacro %}

{% macro median_minutes(start_at, end_at, where='true') -%}
    (extract(epoch from percentile_cont(0.5) within group (order by ({{ end_at }}) - ({{ start_at }})) filter (where {{ where }})) / 60)
{%- endmacro %}
