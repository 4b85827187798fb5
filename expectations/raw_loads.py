"""The raw tables against their load audit: aggregates only (raw tables can be huge)."""

from exops.contract import ENTITIES
from exops.quality.builders import CRITICAL, WARNING, SuiteSpec, rows_rule


def suites(as_of, tables):
    # GX leaves a query with a JOIN to alias {batch} itself; PostgreSQL 15 insists on it
    out = []
    present = [e for e in ENTITIES if e.qualified_table in tables]
    if "audit.loads" in tables:
        counts = " union all ".join(
            f"select '{e.source}' as source, '{e.name}' as entity, count(*) as in_raw"
            f" from {e.qualified_table}"
            for e in present
        )
        loads = SuiteSpec("raw_loads", "audit", "loads")
        loads.expectations.append(
            rows_rule(
                "rows in raw = rows_loaded of the current loads, per entity",
                "with loaded as (select source, entity, sum(rows_loaded) as loaded"
                " from {batch} as current_loads where superseded_by is null group by 1, 2), "
                f"raw as ({counts}) "
                "select source, entity, coalesce(l.loaded, 0) as rows_loaded,"
                " coalesce(r.in_raw, 0) as rows_in_raw"
                " from loaded l full join raw r using (source, entity)"
                " where coalesce(l.loaded, 0) <> coalesce(r.in_raw, 0) order by 1, 2",
                CRITICAL,
            )
        )
        out.append(loads)
    if "audit.partitions" in tables:
        parts = SuiteSpec("raw_partitions", "audit", "partitions")
        parts.expectations.append(
            rows_rule(
                f"every entity is loaded up to {as_of}",
                "select source, entity, max(partition_date) as latest_partition from {batch}"
                f" group by 1, 2 having max(partition_date) < date '{as_of.isoformat()}'"
                " order by 1, 2",
                WARNING,
            )
        )
        out.append(parts)
    if "raw.exchange_trades" in tables:
        trades = SuiteSpec("raw_trades", "raw", "exchange_trades")
        if {"raw.exchange_products", "raw.exchange_asset_prices"} <= tables:
            trades.expectations.append(
                rows_rule(
                    "a USD price for every traded quote asset and day",
                    "with products as (select distinct on (product_id) product_id, quote_asset"
                    " from raw.exchange_products"
                    " order by product_id, _dt desc, _file desc, _line desc), "
                    "needed as (select distinct p.quote_asset as asset,"
                    " (t.executed_at at time zone 'UTC')::date as day"
                    " from {batch} t left join products p using (product_id)) "
                    "select n.asset, n.day from needed n"
                    " left join raw.exchange_asset_prices a"
                    " on a.asset = n.asset and a.price_date = n.day"
                    " where a.asset is null order by 2, 1",
                    CRITICAL,
                )
            )
        if "raw.crm_users" in tables:
            trades.expectations.append(
                rows_rule(
                    "no trade before its maker's or taker's registration",
                    "with users as (select distinct on (user_id) user_id, registered_at"
                    " from raw.crm_users"
                    " order by user_id, updated_at desc, _dt desc, _file desc, _line desc) "
                    "select (t.executed_at at time zone 'UTC')::date as day,"
                    " count(*) as trades from {batch} t"
                    " left join users m on m.user_id = t.maker_user_id"
                    " left join users k on k.user_id = t.taker_user_id"
                    " where t.executed_at < m.registered_at or t.executed_at < k.registered_at"
                    " group by 1 order by 1",
                    WARNING,
                )
            )
        out.append(trades)
    return out
