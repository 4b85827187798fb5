"""feedback_daily and nps_weekly against the staged tickets and survey responses."""

from exops.contract import TICKET_CATEGORIES, TICKET_CHANNELS
from exops.marts import mart
from exops.quality import reference
from exops.quality.builders import derived, mart_suite, reconciliation, rows_rule


def suites(scope, tables):
    daily = mart_suite(
        mart("feedback_daily"), scope, rows_per_day=len(TICKET_CATEGORIES) * len(TICKET_CHANNELS)
    )
    daily.requires = {reference.TICKETS}
    within = scope.days("created_date")
    daily.expectations += [
        reconciliation(
            "tickets = staged tickets per creation date, category and channel",
            ("created_date", "category", "channel"),
            reference.tickets(scope),
            {"tickets": 0},
            within,
        ),
        reconciliation(
            "resolved_tickets, resolved_within_24h, csat_responses, avg_csat,"
            " median_first_response_minutes = the staged tickets' resolutions, responses and"
            " ratings",
            ("created_date", "category", "channel"),
            reference.ticket_outcomes(scope),
            {
                "resolved_tickets": 0,
                "resolved_within_24h": 0,
                "csat_responses": 0,
                "avg_csat": 1e-9,
                "median_first_response_minutes": 1e-6,
            },
            within,
            nullable=("avg_csat", "median_first_response_minutes"),
        ),
        rows_rule(
            "resolved tickets never exceed tickets",
            "select created_date, category, channel from {batch}"
            " where (resolved_tickets > tickets or resolved_within_24h > resolved_tickets)"
            f" and {within} order by 1, 2, 3",
        ),
    ]
    nps = mart_suite(mart("nps_weekly"), scope)
    nps.requires = {reference.SURVEY_RESPONSES}
    weeks = scope.periods("week_start", "week")
    nps.expectations += [
        derived(
            "nps = 100 x (promoters - detractors) / responses",
            ("week_start", "product_line"),
            {"nps": ("100 * (promoters - detractors)::numeric / nullif(responses, 0)", 1e-9)},
            weeks,
        ),
        reconciliation(
            "responses, promoters, passives, detractors = staged NPS responses per week and line",
            ("week_start", "product_line"),
            reference.nps_responses(scope),
            {"responses": 0, "promoters": 0, "passives": 0, "detractors": 0},
            weeks,
        ),
        rows_rule(
            "promoters + passives + detractors = responses",
            "select week_start, product_line from {batch}"
            f" where promoters + passives + detractors <> responses and {weeks} order by 1, 2",
        ),
    ]
    return [daily, nps]
