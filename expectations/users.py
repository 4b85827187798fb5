"""user_tier_daily, user_tier_transitions, retention_cohorts, dormant_recall_targets."""

from exops.contract import TIERS
from exops.marts import mart
from exops.quality import reference
from exops.quality.builders import mart_suite, reconciliation, rows_rule


def suites(scope, tables):
    tiers = mart_suite(mart("user_tier_daily"), scope, rows_per_day=len(TIERS))
    tiers.requires = {reference.USERS}
    within = scope.days("activity_date")
    tiers.expectations.append(
        reconciliation(
            "tiers cover every registered user each day",
            ("activity_date",),
            reference.registered_by_day(
                f"select distinct activity_date from {{batch}} as spine where {within}"
            ),
            {"users": 0},
            within,
            actual=f"select activity_date, sum(users) as users from {{batch}} as mart"
            f" where {within} group by 1",
        )
    )
    transitions = mart_suite(mart("user_tier_transitions"), scope)
    transitions.expectations.append(
        rows_rule(
            "from_tier differs from to_tier",
            "select activity_date, from_tier, to_tier from {batch}"
            f" where from_tier = to_tier and {within}",
        )
    )
    retention = mart_suite(mart("retention_cohorts"), scope)
    retention.expectations.append(
        rows_rule(
            "retained users never exceed the cohort; weeks end by the as-of date",
            "select cohort_week, acquisition_channel, week_number from {batch}"
            " where retained_users > cohort_users"
            f" or cohort_week + 7 * week_number + 6 > date '{scope.as_of.isoformat()}'"
            " order by 1, 2, 3",
        )
    )
    dormant = mart_suite(mart("dormant_recall_targets"), scope)
    dormant.requires = {"marts.user_tier_daily"}
    latest = "(select max(activity_date) from marts.user_tier_daily)"
    dormant.expectations.append(
        reconciliation(
            "one target per user dormant on the latest day of user_tier_daily",
            ("tier",),
            f"select tier, users from marts.user_tier_daily where tier = 'dormant'"
            f" and activity_date = {latest}",
            {"users": 0},
            "true",
            actual="select 'dormant' as tier, count(*) as users from {batch} as mart",
        )
    )
    return [tiers, transitions, retention, dormant]
