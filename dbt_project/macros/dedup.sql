{#- Keep one row per key.
    Change feeds: the greatest updated_at; ties and append-only entities: the later
    partition (_dt), then the later file name, then the later line (SOURCES.md).
    distinct on, not row_number() = 1: PostgreSQL estimates its rows (one per key) where it
    estimates a row_number filter at a fraction of a percent, and then joins the latest users
    (estimated at ~500 of 200,000) with nested loops over millions of rows. -#}
{% macro dedup(relation, key, updated_at=none) -%}
    select distinct on ({{ key | join(', ') }}) *
    from {{ relation }}
    order by
        {{ key | join(', ') }},
        {% if updated_at %}{{ updated_at }} desc,{% endif %}
        _dt desc, _file desc, _line desc
{%- endmacro %}

{#- The config of an incrementally staged model (stg_exchange__trades, ...): delete+insert by
    `unique_key`; rebuilt whole (full_refresh) when the change window restages it (var
    restage: a partition of its entity was re-delivered, exops.transform.window). -#}
{% macro staged_config(unique_key, indexes) %}
    {{ config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=unique_key,
        full_refresh=(true if model.name in window_var('restage', []) else none),
        on_schema_change='fail',
        indexes=indexes,
    ) }}
{% endmacro %}

{#- The first CTEs of an incrementally staged model (stg_exchange__trades, ...), named
    loaded_since and candidates: on a full build every raw row of `relation`; on an
    incremental run the raw rows loaded since the last build (since_load_id < _load_id <=
    ceiling_load_id, and in the partitions of loaded_dates[`loaded_dates`] when given), with
    the versions already staged for their keys, for dedup() to weigh (delete+insert by key
    then replaces those keys). -#}
{% macro staged_candidates(relation, columns, key, loaded_dates=none) -%}
with loaded_since as (
    select {{ columns }}
    from {{ relation }}
    {% if is_incremental() -%}
    where
        {% if loaded_dates -%}
        _dt in {{ text_list(window_var('loaded_dates', {}).get(loaded_dates, [])) }} and
        {% endif -%}
        _load_id > {{ window_var('since_load_id', 0) }}
        and _load_id <= {{ window_var('ceiling_load_id', 0) }}
    {%- endif %}
),

candidates as (
    select * from loaded_since
    {% if is_incremental() -%}
    union all
    select {{ columns }}
    from {{ this }}
    where ({{ key | join(', ') }}) in (select {{ key | join(', ') }} from loaded_since)
    {%- endif %}
)
{%- endmacro %}
