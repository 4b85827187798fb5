{#-
  dbt's hook for the relation a data test reads (overrides the built-in one).

  A model whose config meta has rebuild_window_column is incremental by that date: after an
  incremental run its tests read only the dates the run rebuilt (incremental_state
  .rebuilt_from), since the older rows are the ones earlier runs already tested; after a
  full build (rebuilt_from null) they read everything. A view over such a model says so with
  meta rebuild_window_of. A test's own `where` config still applies on top.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set filters = [] -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- do filters.append('(' ~ where ~ ')') -%}
    {%- endif -%}
    {%- set window = rebuilt_window_filter(relation) -%}
    {%- if window -%}
        {%- do filters.append(window) -%}
    {%- endif -%}
    {%- if filters -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ filters | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{% macro rebuilt_window_filter(relation) -%}
    {%- if not execute or relation is string or relation.identifier is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set ns = namespace(column=none, model=relation.identifier) -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'model' and (node.alias or node.name) == relation.identifier
            and node.schema == relation.schema -%}
            {%- set meta = node.config.meta or {} -%}
            {%- set ns.column = meta.get('rebuild_window_column') -%}
            {#- a view over an incremental model: the window of the model it reads -#}
            {%- set ns.model = meta.get('rebuild_window_of', relation.identifier) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if ns.column is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set query -%}
        select rebuilt_from::text from {{ incremental_state_relation() }}
        where model = '{{ ns.model }}' and rebuilt_from is not null
    {%- endset -%}
    {%- set rows = run_query(query).rows -%}
    {%- if rows | length == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(ns.column ~ " >= date '" ~ rows[0][0] ~ "'") }}
{%- endmacro %}
