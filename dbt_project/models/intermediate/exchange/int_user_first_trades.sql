{{ window_config('first_trade_date', indexes=[{'columns': ['user_id'], 'unique': True}]) }}
{%- set from_day = window_start() %}

-- each user's first trade, on either side, over all products. Incremental: a first trade
-- before the dirty-from day cannot change, so a run drops the later ones and finds the
-- first trade of every user left without one among the rebuilt days' trades
with user_trades as (
    select user_id, trade_id, executed_at, executed_date
    from {{ ref('int_user_trades') }}
    where executed_date >= {{ from_day }}
),

first_trades as (
    select distinct on (user_id)
        user_id,
        trade_id as first_trade_id,
        executed_at as first_trade_at,
        executed_date as first_trade_date
    from user_trades
    {% if is_incremental() -%}
    where not exists (
        select 1 from {{ this }} as known where known.user_id = user_trades.user_id
    )
    {%- endif %}
    order by user_id, executed_at, trade_id
)

select * from first_trades
order by first_trade_date
