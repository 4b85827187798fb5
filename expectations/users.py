"""user_tier_daily, user_tier_transitions, retention_cohorts, dormant_recall_targets."""

from exops.contract import TIERS
from exops.quality.builders import CRITICAL, in_set, mart_suite, rows_rule
from exops.quality.catalogue import mart

# latest state of each user (the change feed's greatest updated_at wins)
LATEST_USERS = """
    select distinct on (user_id) user_id, (registered_at at time zone 'UTC')::date as reg
      from raw.crm_users
     order by user_id, updated_at desc, _dt desc, _file desc, _line desc
"""


def suites(as_of, tables):
    tiers = mart_suite(mart("user_tier_daily"), as_of, rows_per_day=len(TIERS))
    tiers.expectations.append(in_set("tier", TIERS))
    if "raw.crm_users" in tables:
        tiers.expectations.append(
            rows_rule(
                "tiers cover every registered user each day",
                f"with users as ({LATEST_USERS}), "
                "registered as (select reg, count(*) as n from users group by 1), "
                "tiered as (select activity_date, sum(users) as tiered_users from {batch}"
                " group by 1) "
                "select t.activity_date, t.tiered_users, "
                "coalesce((select sum(n) from registered r where r.reg <= t.activity_date), 0)"
                " as registered_users from tiered t "
                "where t.tiered_users <> coalesce((select sum(n) from registered r"
                " where r.reg <= t.activity_date), 0) order by 1",
                CRITICAL,
            )
        )
    transitions = mart_suite(mart("user_tier_transitions"), as_of)
    transitions.expectations.append(
        rows_rule(
            "from_tier differs from to_tier",
            "select activity_date, from_tier, to_tier from {batch} where from_tier = to_tier",
        )
    )
    retention = mart_suite(mart("retention_cohorts"), as_of)
    retention.expectations.append(
        rows_rule(
            "retained users never exceed the cohort; weeks end by the as-of date",
            "select cohort_week, acquisition_channel, week_number from {batch}"
            " where retained_users > cohort_users or week_number not between 0 and 12"
            f" or cohort_week + 7 * week_number + 6 > date '{as_of.isoformat()}'"
            " order by 1, 2, 3",
        )
    )
    dormant = mart_suite(mart("dormant_recall_targets"), as_of)
    return [tiers, transitions, retention, dormant]
