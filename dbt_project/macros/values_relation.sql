{#- An inline one-column relation of literal text values, e.g. the 7 acquisition channels. -#}
{% macro values_relation(values, column) -%}
    (values {% for v in values %}('{{ v }}'){% if not loop.last %}, {% endif %}{% endfor %}) as {{ column }}s ({{ column }})
{%- endmacro %}
