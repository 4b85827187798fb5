{#- Free text with e-mail addresses and phone numbers replaced by tokens. -#}
{% macro mask_pii(column) -%}
    regexp_replace(
        regexp_replace(
            {{ column }},
            '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}',
            '<email>',
            'g'
        ),
        '\+?[0-9][0-9 ().-]{5,}[0-9]',
        '<phone>',
        'g'
    )
{%- endmacro %}
