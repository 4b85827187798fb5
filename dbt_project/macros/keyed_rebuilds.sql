{#- Pre-hook of int_risk_trade_alerts: a user whose device or IP changed (var relinked_users,
    exops.transform.window) may gain or lose linked accounts on any day, so the
    linked-account alerts of their pairs are dropped on every day and rebuilt (the days of
    the window are dropped anyway). -#}
{% macro delete_relinked_pair_alerts() -%}
    {%- set relinked = var('relinked_users', []) -%}
    {%- if is_incremental() and relinked -%}
        delete from {{ this }}
        where alert_type = 'linked_account_trade'
            and (
                {{ dbt.split_part('subject_id', "'|'", 1) }} in {{ text_list(relinked) }}
                or {{ dbt.split_part('subject_id', "'|'", 2) }} in {{ text_list(relinked) }}
            )
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook of int_campaign_trading: campaigns with a new version or enrollment go (the
    select brings back those still started by the as-of date). -#}
{% macro delete_changed_campaigns() -%}
    {%- set changed = var('changed_campaigns', []) -%}
    {%- if is_incremental() and changed -%}
        delete from {{ this }} where campaign_id in {{ text_list(changed) }}
    {%- endif -%}
{%- endmacro %}
