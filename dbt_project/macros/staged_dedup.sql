{#-
  Staging for the biggest append-only entities (trades, account balances): an incremental
  table of the winning version of each key, so a daily run reads the rows delivered since
  it last ran instead of sorting the whole raw history (SOURCES.md: the later dt, then the
  later file name, then the later line wins).

  The table keeps every raw column under its raw name (lineage columns included), so a
  version already staged can compete with new ones. An incremental run (pre-hook, then the
  model's select, in one transaction):
  1. copies the rows loaded since the watermark (the new rows) into a temp table, found
     through the BRIN index on raw._dt of the partitions loaded since;
  2. takes out of the table every version that may lose: the keys of the new rows, and
     every row of a partition that was re-delivered since (its raw rows are gone);
  3. journals in incremental_changes the earliest day any of these versions, old or new,
     belongs to: downstream models rebuild from there;
  4. the select keeps the best of the new rows and the taken-out versions still valid. A
     key whose winner a re-delivery removed without delivering it again (rare) is looked up
     in raw, the only case that reads raw history.
-#}

{#- The partitions of this entity loaded since the watermark: [(dt, ...)] -#}
{% macro _staged_new_partition_dates(source_name, entity, processed, ceiling) %}
    {%- set query -%}
        select partition_date::text
        from {{ var('audit_schema') }}.partitions
        where source = '{{ source_name }}' and entity = '{{ entity }}'
            and load_id > {{ processed }} and load_id <= {{ ceiling }}
        order by 1
    {%- endset -%}
    {{ return(run_query(query).columns[0].values() | list) }}
{% endmacro %}

{#- (watermark, ceiling, new partition dates) for the current incremental run. -#}
{% macro _staged_state(source_name, entity) %}
    {%- set state = run_query("select processed, ceiling from (" ~ incremental_window_state() ~ ") as s") -%}
    {%- set processed = state.columns[0].values()[0] -%}
    {%- set ceiling = state.columns[1].values()[0] -%}
    {%- set dates = _staged_new_partition_dates(source_name, entity, processed, ceiling) -%}
    {{ return({'processed': processed, 'ceiling': ceiling, 'dates': dates}) }}
{% endmacro %}

{#- A predicate on raw._dt the BRIN index can serve: the listed days (or their range). -#}
{% macro _dt_in(column, dates) %}
    {%- if dates | length == 0 -%}
        false
    {%- elif dates | length <= 31 -%}
        ({% for d in dates %}{{ column }} = date '{{ d }}'{% if not loop.last %} or {% endif %}{% endfor %})
    {%- else -%}
        ({{ column }} between date '{{ dates[0] }}' and date '{{ dates[-1] }}' and {{ column }} in (
            {%- for d in dates %}date '{{ d }}'{% if not loop.last %}, {% endif %}{% endfor -%}
        ))
    {%- endif -%}
{% endmacro %}

{% macro _staged_temp(suffix) -%}
    {{ this.identifier }}__{{ suffix }}
{%- endmacro %}

{% macro _key_match(key, left, right) -%}
    {% for k in key %}{{ left }}.{{ k }} = {{ right }}.{{ k }}{% if not loop.last %} and {% endif %}{% endfor %}
{%- endmacro %}

{#- Config of a staged table: the source entity, its key, the staged column with the
    record's own day, and the raw expression of that day (no double quotes). -#}
{% macro staged_dedup_config(source_name, entity, key, date_column, raw_date) %}
    {{ config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=[
            "{{ staged_dedup_prepare('" ~ source_name ~ "', '" ~ entity ~ "', " ~ key
            ~ ", '" ~ date_column ~ "', \"" ~ raw_date ~ "\") }}"
        ],
        post_hook=["{{ staged_dedup_record() }}"],
        indexes=[
            {'columns': key, 'unique': True},
            {'columns': [date_column]},
            {'columns': ['_dt']},
        ],
        meta={'rebuild_window_column': date_column},
    ) }}
{% endmacro %}

{#- Pre-hook: steps 1-3 above (full refresh: journal "everything changed"). -#}
{% macro staged_dedup_prepare(source_name, entity, key, date_column, raw_date) %}
    {%- set source_relation = source(source_name, entity) -%}
    {%- if not is_incremental() -%}
        insert into {{ incremental_changes_relation() }} (load_id, model, first_date)
        select load_id, '{{ this.identifier }}', date '1900-01-01'
        from {{ incremental_state_relation() }} where model = '__run__'
    {%- else -%}
        {%- set s = _staged_state(source_name, entity) -%}
        {%- set keys = key | join(', ') -%}
        create temp table {{ _staged_temp('new') }} on commit drop as
        select * from {{ source_relation }}
        where {{ _dt_in('_dt', s.dates) }}
            and _load_id > {{ s.processed }} and _load_id <= {{ s.ceiling }};

        create temp table {{ _staged_temp('changed') }} on commit drop as
        select {{ keys }} from {{ _staged_temp('new') }}
        union
        select {{ keys }} from {{ this }} where {{ _dt_in('_dt', s.dates) }};
        analyze {{ _staged_temp('changed') }};

        create temp table {{ _staged_temp('prior') }} (like {{ this }}) on commit drop;
        with taken_out as (
            delete from {{ this }} as staged
            using {{ _staged_temp('changed') }} as changed
            where {{ _key_match(key, 'staged', 'changed') }}
            returning staged.*
        )
        insert into {{ _staged_temp('prior') }} select * from taken_out;

        -- winners from re-delivered partitions with no new version at or after their dt
        create temp table {{ _staged_temp('dropped') }} on commit drop as
        select {{ keys }} from {{ _staged_temp('prior') }} as prior
        where {{ _dt_in('prior._dt', s.dates) }}
            and not exists (
                select 1 from {{ _staged_temp('new') }} as new_rows
                where {{ _key_match(key, 'new_rows', 'prior') }} and new_rows._dt >= prior._dt
            );

        insert into {{ incremental_changes_relation() }} (load_id, model, first_date)
        select {{ s.ceiling }}, '{{ this.identifier }}', first_date
        from (
            select least(
                (select min({{ raw_date }}) from {{ _staged_temp('new') }}),
                (select min({{ date_column }}) from {{ _staged_temp('prior') }}),
                (select min({{ raw_date }}) from ({{ staged_dedup_resurrected(source_relation, key, s) }}) as resurrected)
            ) as first_date
        ) as changes
        where first_date is not null
    {%- endif -%}
{% endmacro %}

{#- Older raw versions of keys whose winner a re-delivery removed (usually none: a
    one-time filter skips the scan). -#}
{% macro staged_dedup_resurrected(source_relation, key, s) %}
    select older.*
    from {{ source_relation }} as older
    where exists (select 1 from {{ _staged_temp('dropped') }})
        and ({{ key | join(', ') }}) in (select {{ key | join(', ') }} from {{ _staged_temp('dropped') }})
        and older._load_id <= {{ s.processed }}
{% endmacro %}

{#- The model's relation: the winning raw version of each key it has to (re)stage. -#}
{% macro staged_dedup(source_name, entity, key) %}
    {%- set source_relation = source(source_name, entity) -%}
    {%- set order -%}
        {{ key | join(', ') }}, _dt desc, _file desc, _line desc
    {%- endset -%}
    {%- if not is_incremental() -%}
        select distinct on ({{ key | join(', ') }}) *
        from {{ source_relation }}
        order by {{ order }}
    {%- else -%}
        {%- set s = _staged_state(source_name, entity) -%}
        {%- set columns = adapter.get_columns_in_relation(source_relation) | map(attribute='name') | join(', ') -%}
        select distinct on ({{ key | join(', ') }}) *
        from (
            select {{ columns }} from {{ _staged_temp('new') }}
            union all
            select {{ columns }} from {{ _staged_temp('prior') }} as prior
            where not {{ _dt_in('prior._dt', s.dates) }}
            union all
            {{ staged_dedup_resurrected(source_relation, key, s) }}
        ) as candidates
        order by {{ order }}
    {%- endif -%}
{% endmacro %}

{#- Post-hook: the watermark, and the first day this run changed (its data tests' window). -#}
{% macro staged_dedup_record() %}
    insert into {{ incremental_state_relation() }} (model, load_id, rebuilt_from, updated_at)
    select
        '{{ this.identifier }}',
        run.load_id,
        {% if is_incremental() -%}
            coalesce((
                select min(changes.first_date) from {{ incremental_changes_relation() }} as changes
                where changes.model = '{{ this.identifier }}' and changes.load_id = run.load_id
            ), date '9999-12-31'),
        {%- else -%}
            null::date,
        {%- endif %}
        now()
    from {{ incremental_state_relation() }} as run
    where run.model = '__run__'
    on conflict (model) do update set
        load_id = excluded.load_id,
        rebuilt_from = excluded.rebuilt_from,
        updated_at = excluded.updated_at
{% endmacro %}
