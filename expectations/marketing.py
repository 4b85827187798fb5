"""acquisition_funnel, channel_performance, cohort_ltv, campaign_performance."""

from exops.contract import CHANNELS
from exops.marts import mart
from exops.quality import reference
from exops.quality.builders import mart_suite, reconciliation, rows_rule


def suites(scope, tables):
    funnel = mart_suite(mart("acquisition_funnel"), scope, rows_per_day=len(CHANNELS))
    funnel.requires = {reference.USERS}
    funnel.expectations += [
        reconciliation(
            "registered_users = staged users per registration date and channel",
            ("registration_date", "acquisition_channel"),
            reference.registrations(scope),
            {"registered_users": 0},
            scope.days("registration_date"),
        ),
        rows_rule(
            "funnel steps never exceed registrations",
            "select registration_date, acquisition_channel from {batch}"
            " where (kyc_approved_users > registered_users"
            " or deposited_users > registered_users or traded_users > registered_users)"
            f" and {scope.days('registration_date')} order by 1, 2",
        ),
    ]
    channels = mart_suite(mart("channel_performance"), scope)
    channels.requires = {reference.USERS, reference.MARKETING_SPEND}
    channels.expectations.append(
        reconciliation(
            "spend_usd, registered_users = staged spend and users per month and channel",
            ("month", "acquisition_channel"),
            reference.channel_months(scope),
            {"spend_usd": 0.01, "registered_users": 0},
            scope.periods("month", "month"),
        )
    )
    ltv = mart_suite(mart("cohort_ltv"), scope)
    ltv.requires = {reference.USERS}
    months = scope.periods("cohort_month", "month")
    ltv.expectations.append(
        reconciliation(
            "cohort_users = staged users per registration month and channel, at every offset",
            ("cohort_month", "acquisition_channel"),
            reference.cohorts(scope),
            {"cohort_users": 0},
            months,
            # an offset whose cohort_users differs from the others shows as null
            actual="select cohort_month, acquisition_channel, case when min(cohort_users)"
            " = max(cohort_users) then min(cohort_users) end as cohort_users"
            f" from {{batch}} as mart where {months} group by 1, 2",
        )
    )
    campaigns = mart_suite(mart("campaign_performance"), scope)
    campaigns.expectations.append(
        rows_rule(
            "campaigns have started by the as-of date",
            f"select campaign_id, start_date from {{batch}}"
            f" where start_date > date '{scope.as_of.isoformat()}' order by 1",
        )
    )
    return [funnel, channels, ltv, campaigns]
