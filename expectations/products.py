"""product_daily_kpis and product_stage_kpis."""

from exops.contract import PRODUCT_LINES
from exops.quality.builders import in_set, mart_suite, rows_rule
from exops.quality.catalogue import SEGMENT_ENUMS, mart


def suites(as_of, tables):
    daily = mart_suite(mart("product_daily_kpis"), as_of)
    daily.expectations.append(in_set("lifecycle_stage", SEGMENT_ENUMS["lifecycle_stage"]))
    daily.expectations.append(in_set("product_line", PRODUCT_LINES))
    daily.expectations.append(
        rows_rule(
            "no product has rows after the day it was delisted",
            "select product_id, min(activity_date) filter (where lifecycle_stage = 'delisted')"
            " as delisted_on, max(activity_date) as last_row from {batch} group by 1"
            " having max(activity_date) > min(activity_date)"
            " filter (where lifecycle_stage = 'delisted') order by 1",
        )
    )
    stages = mart_suite(mart("product_stage_kpis"), as_of)
    stages.expectations.append(
        rows_rule(
            "stage runs end on or before the as-of date",
            "select product_id, stage_start_date, stage_end_date from {batch}"
            f" where stage_end_date > date '{as_of.isoformat()}'"
            " or stage_end_date < stage_start_date order by 1, 2",
        )
    )
    return [daily, stages]
