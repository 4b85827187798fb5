"""The raw tables against their load audit, per partition, within the run's days.

Rules over raw tables are aggregates filtered on ``_dt`` (BRIN-indexed): raw tables can be
huge. A record may be older than its partition by the late-arrival window, so the record
checks read the partitions of the run's days; ``exops validate --full`` reads them all.
"""

from exops.contract import ENTITIES
from exops.quality.builders import CRITICAL, WARNING, SuiteSpec, reconciliation, rows_rule

KEYS = ("source", "entity", "partition_date", "load_id")


def suites(scope, tables):
    out = []
    present = [e for e in ENTITIES if e.qualified_table in tables]
    dts = scope.days("_dt")
    if "audit.partitions" in tables:
        parts = SuiteSpec("raw_loads", "audit", "partitions")
        parts.requires = {"audit.loads"}
        in_raw = " union all ".join(
            f"select '{e.source}' as source, '{e.name}' as entity, _dt as partition_date,"
            f" _load_id as load_id, count(*) as rows_loaded from {e.qualified_table}"
            f" where {dts} group by 3, 4"
            for e in present
        )
        within = scope.days("partition_date")
        parts.expectations += [
            reconciliation(
                "rows in raw = rows_loaded of the partition's current load",
                KEYS,
                in_raw,
                {"rows_loaded": 0},
                within,
            ),
            reconciliation(
                "rows_loaded of the partition = its current files' rows_loaded in audit.loads",
                KEYS,
                "select source, entity, partition_date, load_id, sum(rows_loaded) as rows_loaded"
                f" from audit.loads where superseded_by is null and {within} group by 1, 2, 3, 4",
                {"rows_loaded": 0},
                within,
            ),
            rows_rule(
                f"every entity is loaded up to {scope.as_of}",
                "select source, entity, max(partition_date) as latest_partition from {batch}"
                f" group by 1, 2 having max(partition_date) < date '{scope.as_of.isoformat()}'"
                " order by 1, 2",
                WARNING,
            ),
        ]
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
                    " from {batch} as t left join products p using (product_id)"
                    f" where {scope.days('t._dt')}) "
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
                    " count(*) as trades from {batch} as t"
                    " left join users m on m.user_id = t.maker_user_id"
                    " left join users k on k.user_id = t.taker_user_id"
                    " where (t.executed_at < m.registered_at or t.executed_at < k.registered_at)"
                    f" and {scope.days('t._dt')} group by 1 order by 1",
                    WARNING,
                )
            )
        out.append(trades)
    return out
