{% macro grant_bi_reader() %}
    select 1
{% endmacro %}
