"""product_daily_kpis and product_stage_kpis."""

from exops.marts import mart
from exops.quality import reference
from exops.quality.builders import mart_suite, reconciliation, rows_rule

TOTALS = {"trade_count": 0, "volume_usd": 0.01, "fees_usd": 0.01}


def suites(scope, tables):
    daily = mart_suite(mart("product_daily_kpis"), scope)
    daily.requires = {reference.TRADES, "marts.exchange_daily_kpis"}
    within = scope.days("activity_date")
    daily.expectations += [
        reconciliation(
            "trade_count, volume_usd, fees_usd, traders = the product's priced trades of the day",
            ("product_id", "activity_date"),
            reference.priced_trades(scope, by=("product_id",)),
            {**TOTALS, "traders": 0},
            within,
        ),
        reconciliation(
            "trade_count, volume_usd, fees_usd summed over products = exchange_daily_kpis",
            ("activity_date",),
            f"select activity_date, {', '.join(TOTALS)} from marts.exchange_daily_kpis"
            f" where {within}",
            TOTALS,
            within,
            actual=f"select activity_date, {', '.join(f'sum({c}) as {c}' for c in TOTALS)}"
            f" from {{batch}} as mart where {within} group by 1",
        ),
        rows_rule(
            "no product has rows after the day it was delisted",
            "select product_id, min(activity_date) filter (where lifecycle_stage = 'delisted')"
            " as delisted_on, max(activity_date) as last_row from {batch} group by 1"
            " having max(activity_date) > min(activity_date)"
            " filter (where lifecycle_stage = 'delisted') order by 1",
        ),
    ]
    stages = mart_suite(mart("product_stage_kpis"), scope)
    stages.expectations.append(
        rows_rule(
            "stage runs end on or before the as-of date",
            "select product_id, stage_start_date, stage_end_date from {batch}"
            f" where stage_end_date > date '{scope.as_of.isoformat()}'"
            " or stage_end_date < stage_start_date order by 1, 2",
        )
    )
    return [daily, stages]
