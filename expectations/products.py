"""product_daily_kpis and product_stage_kpis."""

from exops.marts import mart
from exops.quality import reference
from exops.quality.builders import derived, mart_suite, reconciliation, rows_rule

TOTALS = {"trade_count": 0, "volume_usd": 0.01, "fees_usd": 0.01}


def suites(scope, tables):
    daily = mart_suite(mart("product_daily_kpis"), scope)
    daily.requires = {
        reference.TRADES,
        reference.PRODUCT_FIRST_TRADES,
        reference.WEALTH_EVENTS,
        "marts.exchange_daily_kpis",
    }
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
        reconciliation(
            "new_traders, subscribe_usd, redeem_usd, subscribers = the product's first trades"
            " and wealth events of the day",
            ("product_id", "activity_date"),
            reference.product_activity(scope),
            {"new_traders": 0, "subscribe_usd": 0.01, "redeem_usd": 0.01, "subscribers": 0},
            within,
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
    stages.requires = {"marts.product_daily_kpis"}
    runs = f"stage_end_date >= date '{scope.start.isoformat()}'"
    stages.expectations += [
        rows_rule(
            "stage runs end on or before the as-of date",
            "select product_id, stage_start_date, stage_end_date from {batch}"
            f" where stage_end_date > date '{scope.as_of.isoformat()}'"
            " or stage_end_date < stage_start_date order by 1, 2",
        ),
        reconciliation(
            "days_in_stage, volume_usd, fees_usd, new_traders, daily averages ="
            " product_daily_kpis over the run's days",
            ("product_id", "stage_start_date"),
            "select run.product_id, run.stage_start_date, count(*) as days_in_stage,"
            " sum(day.volume_usd) as volume_usd, sum(day.fees_usd) as fees_usd,"
            " sum(day.new_traders) as new_traders,"
            " avg(day.volume_usd) as avg_daily_volume_usd,"
            " avg(day.traders) as avg_daily_traders"
            " from marts.product_stage_kpis as run join marts.product_daily_kpis as day"
            " on day.product_id = run.product_id and day.lifecycle_stage = run.lifecycle_stage"
            " and day.activity_date between run.stage_start_date and run.stage_end_date"
            f" where run.{runs} group by 1, 2",
            {
                "days_in_stage": 0,
                "volume_usd": 0.01,
                "fees_usd": 0.01,
                "new_traders": 0,
                "avg_daily_volume_usd": 0.01,
                "avg_daily_traders": 1e-6,
            },
            runs,
        ),
        derived(
            "days_in_stage = stage_end_date - stage_start_date + 1",
            ("product_id", "stage_start_date"),
            {"days_in_stage": ("stage_end_date - stage_start_date + 1", 0)},
            runs,
        ),
        rows_rule(
            "every product day lies in one run of its stage",
            "select day.product_id, day.activity_date, count(run.product_id) as runs"
            " from marts.product_daily_kpis as day left join {batch} as run"
            " on run.product_id = day.product_id and run.lifecycle_stage = day.lifecycle_stage"
            " and day.activity_date between run.stage_start_date and run.stage_end_date"
            f" where {scope.days('day.activity_date')} group by 1, 2"
            " having count(run.product_id) <> 1 order by 1, 2",
        ),
    ]
    return [daily, stages]
