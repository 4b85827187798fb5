"""acquisition_funnel, channel_performance, cohort_ltv, campaign_performance."""

from datetime import timedelta

from exops.contract import CHANNELS
from exops.marts import mart
from exops.quality import reference
from exops.quality.builders import derived, mart_suite, reconciliation, rows_rule
from exops.transform import project_vars


def suites(scope, tables):
    funnel = mart_suite(mart("acquisition_funnel"), scope, rows_per_day=len(CHANNELS))
    funnel.requires = {reference.USERS, reference.FUNNEL_STEPS}
    # a registration's steps may come up to the funnel window after it: the registrations of
    # the days before the run's, by that window, are checked too (from the first day with
    # data on: the funnel has no row before it)
    window_hours = int(project_vars()["funnel_window_hours"])
    steps_from = max(scope.start - timedelta(days=-(-window_hours // 24)), scope.first_day)
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
            "kyc_approved_users, deposited_users, traded_users, median_hours_to_first_trade ="
            " registrations whose first approved KYC, completed deposit and trade came within"
            " the funnel window",
            ("registration_date", "acquisition_channel"),
            reference.funnel_steps(steps_from, scope.as_of, window_hours),
            {
                "kyc_approved_users": 0,
                "deposited_users": 0,
                "traded_users": 0,
                "median_hours_to_first_trade": 1e-6,
            },
            registrations,
            nullable=("median_hours_to_first_trade",),
        ),
        derived(
            "kyc_rate, deposit_rate, trade_rate = each step / registered_users",
            ("registration_date", "acquisition_channel"),
            {
                f"{rate}_rate": (f"{step}_users::numeric / nullif(registered_users, 0)", 1e-9)
                for rate, step in (
                    ("kyc", "kyc_approved"),
                    ("deposit", "deposited"),
                    ("trade", "traded"),
                )
            },
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
        derived(
            "cac_usd = spend_usd / new_traders",
            ("month", "acquisition_channel"),
            {"cac_usd": ("spend_usd / nullif(new_traders, 0)", 1e-9)},
            scope.periods("month", "month"),
        ),
    ]
    ltv = mart_suite(mart("cohort_ltv"), scope)
    ltv.requires = {reference.USERS, reference.USER_MONTHS}
    months = scope.periods("cohort_month", "month")
    offset_month = "(cohort_month + make_interval(months => months_since_registration))::date"
    ltv.expectations += [
        reconciliation(
            "cumulative_fees_usd = the cohort's user fees since registration, to the end of the"
            " offset's month",
            ("cohort_month", "acquisition_channel", "months_since_registration"),
            reference.cohort_fees(scope),
            {"cumulative_fees_usd": 0.01},
            scope.periods(offset_month, "month"),
        ),
        derived(
            "ltv_usd = cumulative_fees_usd / cohort_users",
            ("cohort_month", "acquisition_channel", "months_since_registration"),
            {"ltv_usd": ("cumulative_fees_usd / nullif(cohort_users, 0)", 1e-9)},
            scope.periods(offset_month, "month"),
        ),
    ]
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
        derived(
            "incremental_volume_usd = participants x (participants' volume change per"
            " participant - controls' per control)",
            ("campaign_id",),
            {
                "incremental_volume_usd": (
                    "case when participants > 0 and controls > 0 then participants * ("
                    "(participant_volume_during_usd - participant_volume_pre_usd) / participants"
                    " - (control_volume_during_usd - control_volume_pre_usd) / controls) end",
                    0.01,
                )
            },
            "true",
        ),
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
