"""user_tier_daily, user_tier_transitions, retention_cohorts, dormant_recall_targets."""

from exops.contract import TIERS
from exops.marts import mart
from exops.quality import reference
from exops.quality.builders import derived, mart_suite, reconciliation, rows_rule
from exops.transform import project_vars


def suites(scope, tables):
    tiers = mart_suite(mart("user_tier_daily"), scope, rows_per_day=len(TIERS))
    tiers.requires = {reference.USERS, reference.USER_DAYS, reference.TIER_SPELLS}
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
    tiers.expectations += [
        reconciliation(
            "users per tier = the users whose tier spell covers the day",
            ("activity_date", "tier"),
            reference.tier_members(scope),
            {"users": 0},
            within,
        ),
        reconciliation(
            "active_users, volume_usd, fees_usd, net_deposits_usd summed over tiers ="
            " the day's activity of the registered users",
            ("activity_date",),
            reference.registered_activity(scope),
            {"active_users": 0, "volume_usd": 0.01, "fees_usd": 0.01, "net_deposits_usd": 0.01},
            within,
            actual="select activity_date, sum(active_users) as active_users,"
            " sum(volume_usd) as volume_usd, sum(fees_usd) as fees_usd,"
            " sum(net_deposits_usd) as net_deposits_usd"
            f" from {{batch}} as mart where {within} group by 1",
        ),
    ]
    transitions = mart_suite(mart("user_tier_transitions"), scope)
    transitions.requires = {"marts.user_tier_daily", reference.TIER_CHANGES}
    transitions.expectations += [
        rows_rule(
            "from_tier differs from to_tier",
            "select activity_date, from_tier, to_tier from {batch}"
            f" where from_tier = to_tier and {within}",
        ),
        reconciliation(
            "transitions into a tier less out of it = the change in user_tier_daily's users"
            " less the day's registrations in that tier",
            ("activity_date", "tier"),
            reference.tier_net_changes(scope),
            {"net_users": 0},
            within,
            # every tier of every checked day after the first, also with no transitions
            actual="select days.activity_date, days.tier,"
            " coalesce(sum(mart.users) filter (where mart.to_tier = days.tier), 0)"
            " - coalesce(sum(mart.users) filter (where mart.from_tier = days.tier), 0)"
            " as net_users from marts.user_tier_daily as days"
            " left join {batch} as mart on mart.activity_date = days.activity_date"
            " and days.tier in (mart.from_tier, mart.to_tier)"
            f" where {scope.days('days.activity_date')} and days.activity_date >"
            " (select min(activity_date) from marts.user_tier_daily) group by 1, 2",
        ),
    ]
    retention = mart_suite(mart("retention_cohorts"), scope)
    retention.requires = {reference.FIRST_TRADES, reference.TRADING_WEEKS, reference.USERS}
    cohort_weeks = scope.periods("cohort_week", "week")
    activity_weeks = scope.periods("cohort_week + 7 * week_number", "week")
    retention.expectations += [
        reconciliation(
            "cohort_users = users per week of their first trade and channel, at every week",
            ("cohort_week", "acquisition_channel"),
            reference.retention_cohort_users(scope),
            {"cohort_users": 0},
            cohort_weeks,
            # a week number whose cohort_users differs from the others shows as null
            actual="select cohort_week, acquisition_channel, case when min(cohort_users)"
            " = max(cohort_users) then min(cohort_users) end as cohort_users"
            f" from {{batch}} as mart where {cohort_weeks} group by 1, 2",
        ),
        reconciliation(
            "retained_users = the cohort's users trading in the week",
            ("cohort_week", "acquisition_channel", "week_number"),
            reference.retained_users(
                scope.periods("weeks.trade_week", "week"),
                scope.as_of,
                int(project_vars()["retention_weeks"]),
            ),
            {"retained_users": 0},
            activity_weeks,
        ),
    ]
    retention.expectations.append(
        derived(
            "retention_rate = retained_users / cohort_users",
            ("cohort_week", "acquisition_channel", "week_number"),
            {"retention_rate": ("retained_users::numeric / nullif(cohort_users, 0)", 1e-9)},
            activity_weeks,
        )
    )
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
    dormant.requires = {
        "marts.user_tier_daily",
        reference.TIER_SPELLS,
        reference.USER_MONTHS,
        reference.BALANCES,
    }
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
    as_of = f"date '{scope.as_of.isoformat()}'"
    dormant.expectations += [
        reconciliation(
            "lifetime_volume_usd, lifetime_fees_usd, latest_equity_usd summed over targets ="
            " the dormant users' activity and equity",
            ("tier",),
            reference.dormant_totals(scope),
            {"lifetime_volume_usd": 0.01, "lifetime_fees_usd": 0.01, "latest_equity_usd": 0.01},
            "true",
            # no target at all: sums of 0
            actual="select 'dormant' as tier,"
            " coalesce(sum(lifetime_volume_usd), 0) as lifetime_volume_usd,"
            " coalesce(sum(lifetime_fees_usd), 0) as lifetime_fees_usd,"
            " coalesce(sum(latest_equity_usd), 0) as latest_equity_usd from {batch} as mart",
        ),
        derived(
            "days_since_active = as-of date - last_active_date",
            ("user_id",),
            {"days_since_active": (f"{as_of} - last_active_date", 0)},
            "true",
        ),
    ]
    return [tiers, transitions, retention, dormant]
