{#-
  Pre-hook of the priced models: a USD price needed for a day they rebuild that is missing
  fails the model (and so everything downstream) with an error naming the assets and days,
  e.g. `invalid input syntax for type integer: "missing USD price: BTC on 2026-11-22, ..."`.
  PostgreSQL has no RAISE in plain SQL; the failing cast carries the message.
-#}
{% macro assert_prices_complete(kind, from_day="date '1900-01-01'") %}
    with days as (
        select activity_date from {{ ref('int_days') }} where activity_date >= {{ from_day }}
    ),

    needed as (
        {% if kind == 'trades' %}
            select distinct
                coalesce(products.quote_asset, 'quote asset of unknown product ' || trades.product_id) as asset,
                trades.executed_date as price_date
            from {{ ref('stg_exchange__trades') }} as trades
            inner join days on trades.executed_date = days.activity_date
                and trades.executed_date >= {{ from_day }}
            left join {{ ref('stg_exchange__products') }} as products
                on trades.product_id = products.product_id
        {% elif kind == 'transfers' %}
            select distinct transfers.asset, transfers.created_date as price_date
            from {{ ref('stg_exchange__transfers') }} as transfers
            inner join days on transfers.created_date = days.activity_date
                and transfers.created_date >= {{ from_day }}
            where transfers.status = 'completed'
        {% elif kind == 'wealth_events' %}
            select distinct wealth_events.asset, wealth_events.event_date as price_date
            from {{ ref('stg_exchange__wealth_events') }} as wealth_events
            inner join days on wealth_events.event_date = days.activity_date
                and wealth_events.event_date >= {{ from_day }}
        {% else %}
            {{ exceptions.raise_compiler_error("assert_prices_complete: unknown kind " ~ kind) }}
        {% endif %}
    ),

    missing as (
        select needed.asset, needed.price_date
        from needed
        left join {{ ref('stg_exchange__asset_prices') }} as prices
            on needed.asset = prices.asset and needed.price_date = prices.price_date
        where prices.usd_price is null
    ),

    first_missing as (
        select asset, price_date from missing order by price_date, asset limit 20
    )

    select cast(
        {{ dbt.concat([
            "'missing USD price (" ~ kind ~ "): '",
            dbt.listagg(dbt.concat(['asset', "' on '", dbt.cast('price_date', api.Column.translate_type('string'))]), "', '", 'order by price_date, asset'),
            "' - load the asset_prices partitions for these days, then rebuild'",
        ]) }}
        as integer
    ) as missing_prices
    from first_missing
    having count(*) > 0
{% endmacro %}
