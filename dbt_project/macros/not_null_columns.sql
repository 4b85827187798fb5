{#- Generic test: none of `columns` is null, checked in one scan of the model. One data test
    per model, not one per column: each data test is a node that dbt schedules, compiles and
    runs, and that the model's children wait for in a build. -#}
{% test not_null_columns(model, columns) %}
    select {{ columns | join(', ') }}
    from {{ model }}
    where {% for column in columns %}{{ column }} is null{% if not loop.last %} or {% endif %}{% endfor %}
{% endtest %}
