"""feedback_daily and nps_weekly."""

from exops.contract import TICKET_CATEGORIES, TICKET_CHANNELS
from exops.quality.builders import mart_suite, rows_rule
from exops.quality.catalogue import mart


def suites(as_of, tables):
    daily = mart_suite(
        mart("feedback_daily"), as_of, rows_per_day=len(TICKET_CATEGORIES) * len(TICKET_CHANNELS)
    )
    daily.expectations.append(
        rows_rule(
            "resolved tickets never exceed tickets",
            "select created_date, category, channel from {batch}"
            " where resolved_tickets > tickets or resolved_within_24h > resolved_tickets"
            " order by 1, 2, 3",
        )
    )
    nps = mart_suite(mart("nps_weekly"), as_of)
    nps.expectations.append(
        rows_rule(
            "promoters + passives + detractors = responses",
            "select week_start, product_line from {batch}"
            " where promoters + passives + detractors <> responses order by 1, 2",
        )
    )
    return [daily, nps]
