"""acquisition_funnel, channel_performance, cohort_ltv, campaign_performance."""

from exops.contract import CHANNELS
from exops.quality.builders import in_set, mart_suite, rows_rule
from exops.quality.catalogue import mart


def suites(as_of, tables):
    funnel = mart_suite(mart("acquisition_funnel"), as_of, rows_per_day=len(CHANNELS))
    funnel.expectations.append(in_set("acquisition_channel", CHANNELS))
    funnel.expectations.append(
        rows_rule(
            "funnel steps never exceed registrations",
            "select registration_date, acquisition_channel from {batch}"
            " where kyc_approved_users > registered_users"
            " or deposited_users > registered_users or traded_users > registered_users"
            " order by 1, 2",
        )
    )
    channels = mart_suite(mart("channel_performance"), as_of)
    ltv = mart_suite(mart("cohort_ltv"), as_of)
    campaigns = mart_suite(mart("campaign_performance"), as_of)
    campaigns.expectations.append(
        rows_rule(
            "campaigns have started by the as-of date",
            f"select campaign_id, start_date from {{batch}}"
            f" where start_date > date '{as_of.isoformat()}' order by 1",
        )
    )
    return [funnel, channels, ltv, campaigns]
