"""acquisition_funnel, channel_performance, cohort_ltv, campaign_performance."""

from datetime import timedelta

from exops.contract import CHANNELS
from exops.marts import mart
from exops.quality import reference
from exops.quality.builders import mart_suite, reconciliation, rows_rule
from exops.transform import project_vars


def suites(scope, tables):
    funnel = mart_suite(mart("acquisition_funnel"), scope, rows_per_day=len(CHANNELS))
    funnel.requires = {reference.USERS, reference.FUNNEL_STEPS}
    # a registration's steps may come up to the funnel window after it: the registrations of
    # the days before the run's, by that window, are checked too
    window_hours = int(project_vars()["funnel_window_hours"])
    steps_from = scope.start - timedelta(days=-(-window_hours // 24))
    registrations = (
        f"registration_date >= date '{steps_from.isoformat()}'"
        f" and registration_date <= date '{scope.as_of.isoformat()}'"
    )
    funnel.expectations += [
        reconciliation(
            "registered_users = staged users per registration date and channel",
            ("registration_date", "acquisition_channel"),
            reference.registrations(scope),
            {"registered_users": 0},
            scope.days("registration_date"),
        ),
        reconciliation(
            "kyc_approved_users, deposited_users, traded_users = registrations whose first"
            " approved KYC, completed deposit and trade came within the funnel window",
            ("registration_date", "acquisition_channel"),
            reference.funnel_steps(steps_from, scope.as_of, window_hours),
            {"kyc_approved_users": 0, "deposited_users": 0, "traded_users": 0},
            registrations,
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
    channels.requires = {reference.USERS, reference.MARKETING_SPEND, reference.FIRST_TRADES}
    channels.expectations += [
        reconciliation(
            "spend_usd, registered_users = staged spend and users per month and channel",
            ("month", "acquisition_channel"),
            reference.channel_months(scope),
            {"spend_usd": 0.01, "registered_users": 0},
            scope.periods("month", "month"),
        ),
        reconciliation(
            "new_traders = users per month of their first trade and channel",
            ("month", "acquisition_channel"),
            reference.channel_new_traders(scope),
            {"new_traders": 0},
            scope.periods("month", "month"),
        ),
    ]
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
    campaigns.requires = {reference.CAMPAIGNS, reference.ENROLLMENTS, reference.REWARDS}
    campaigns.expectations += [
        rows_rule(
            "campaigns have started by the as-of date",
            f"select campaign_id, start_date from {{batch}}"
            f" where start_date > date '{scope.as_of.isoformat()}' order by 1",
        ),
        # every campaign, every run: a campaign's row changes with each of its days
        reconciliation(
            "participants, cost_usd = the campaign's enrolled users and rewards paid by the"
            " as-of date",
            ("campaign_id",),
            reference.campaign_members(scope),
            {"participants": 0, "cost_usd": 0.01},
            "true",
        ),
    ]
    return [funnel, channels, ltv, campaigns]
