"""The quality gate checks numbers: marts built by dbt on simulated data reconcile with the
layers below them, a wrong number fails the exact expectation that compares it, and a daily
run checks only the days its new loads can change (``full=True`` checks every day)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest
from test_publish_support import mail_environment

from exops.quality import QualityGateFailed, validate

from built_warehouse import SCENARIO

pytestmark = pytest.mark.built_warehouse

START = SCENARIO.start
LAST = SCENARIO.last
LATE = 3  # vars.late_arrival_days of dbt_project.yml

EXCHANGE = "exchange_daily_kpis"
EXCHANGE_TRADES = "trade_count, volume_usd, fees_usd, traders = the day's priced trades"
PRODUCT_TRADES = (
    "trade_count, volume_usd, fees_usd, traders = the product's priced trades of the day"
)
PRODUCT_SUMS = "trade_count, volume_usd, fees_usd summed over products = exchange_daily_kpis"
FUNNEL = "registered_users = staged users per registration date and channel"
REGISTRATIONS = "registrations = acquisition_funnel registered_users over channels"
TIERS = "tiers cover every registered user each day"
TIER_SPELLS = "users per tier = the users whose tier spell covers the day"
TIER_ACTIVITY = (
    "active_users, volume_usd, fees_usd, net_deposits_usd summed over tiers ="
    " the day's activity of the registered users"
)
TRANSITIONS = (
    "transitions into a tier less out of it = the change in user_tier_daily's users"
    " less the day's registrations in that tier"
)
EXCHANGE_ACTIVITY = (
    "new_traders, active_users, deposits_usd, withdrawals_usd = the day's first trades,"
    " active users and completed transfers"
)
ROLLING = "wau, mau = distinct active users over the day's last 7 and 28 days"
PRODUCT_ACTIVITY = (
    "new_traders, subscribe_usd, redeem_usd, subscribers = the product's first trades"
    " and wealth events of the day"
)
FUNNEL_STEPS = (
    "kyc_approved_users, deposited_users, traded_users, median_hours_to_first_trade ="
    " registrations whose first approved KYC, completed deposit and trade came within"
    " the funnel window"
)
FUNNEL_RATES = "kyc_rate, deposit_rate, trade_rate = each step / registered_users"
TICKET_OUTCOMES = (
    "resolved_tickets, resolved_within_24h, csat_responses, avg_csat,"
    " median_first_response_minutes = the staged tickets' resolutions, responses and ratings"
)
CAMPAIGN_MEMBERS = (
    "participants, cost_usd = the campaign's enrolled users and rewards paid by the as-of date"
)
COHORT_FEES = (
    "cumulative_fees_usd = the cohort's user fees since registration, to the end of the"
    " offset's month"
)
DORMANT_TOTALS = (
    "lifetime_volume_usd, lifetime_fees_usd, latest_equity_usd summed over targets ="
    " the dormant users' activity and equity"
)
STAGE_SUMS = (
    "days_in_stage, volume_usd, fees_usd, new_traders, daily averages ="
    " product_daily_kpis over the run's days"
)


@pytest.fixture(scope="module")
def built(warehouse_url: str, built_warehouse, tmp_path_factory) -> Iterator[dict]:
    """All days but the last loaded, built and validated in full; then the last day (the
    session's built warehouse, copied for this module)."""
    root = tmp_path_factory.mktemp("reconcile")
    with mail_environment(root / "var", {"data_eng": "de@platform.test"}):
        yield {
            "url": warehouse_url,
            "before": built_warehouse.before,
            "daily": built_warehouse.daily,
        }


def _run(url: str, run_id: str) -> tuple:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "select as_of, window_start, load_id_ceiling, passed from quality.validation_runs"
            " where run_id = %s",
            (run_id,),
        ).fetchone()


@contextmanager
def corrupted(url: str, change: str, undo: str, params: tuple) -> Iterator[None]:
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute(change, params).rowcount == 1
        try:
            yield
        finally:
            assert conn.execute(undo, params).rowcount == 1


def _critical_failures(url: str, full: bool = False) -> set[tuple[str, str]]:
    with pytest.raises(QualityGateFailed) as info:
        validate(url, full=full)
    return {(r.suite, r.expectation) for r in info.value.result.critical_failures}


def test_first_validation_checks_all_history_and_passes(built: dict) -> None:
    before = built["before"]
    assert before.passed, before.summary()
    assert before.as_of == LAST - timedelta(days=1)
    as_of, window_start, ceiling, passed = _run(built["url"], before.run_id)
    assert (as_of, window_start, passed) == (LAST - timedelta(days=1), None, True)
    assert ceiling is not None
    names = {(r.suite, r.expectation) for r in before.results}
    assert {
        (EXCHANGE, EXCHANGE_TRADES),
        ("product_daily_kpis", PRODUCT_TRADES),
        ("product_daily_kpis", PRODUCT_SUMS),
        ("acquisition_funnel", FUNNEL),
        (EXCHANGE, REGISTRATIONS),
        ("user_tier_daily", TIERS),
        ("raw_loads", "rows in raw = rows_loaded of the partition's current load"),
        ("feedback_daily", "tickets = staged tickets per creation date, category and channel"),
        (
            "channel_performance",
            "spend_usd, registered_users = staged spend and users per month and channel",
        ),
    } <= names
    # structural checks are dbt data tests now, not GX expectations
    assert not [n for n in names if n[1].startswith("key (") or " not null" in n[1]]


def test_daily_validation_checks_only_the_new_days(built: dict) -> None:
    daily, before = built["daily"], built["before"]
    assert daily.passed, daily.summary()
    as_of, window_start, ceiling, passed = _run(built["url"], daily.run_id)
    # the new partitions are the last day's; their records may be up to LATE days older
    assert (as_of, window_start, passed) == (LAST, LAST - timedelta(days=LATE), True)
    assert ceiling > _run(built["url"], before.run_id)[2]
    assert f"days {LAST - timedelta(days=LATE)}..{LAST}" in daily.summary()

    full = validate(built["url"], full=True)
    assert full.passed, full.summary()
    assert _run(built["url"], full.run_id)[:2] == (LAST, None)


def test_inflated_exchange_volume_fails(built: dict) -> None:
    with corrupted(
        built["url"],
        "update marts.exchange_daily_kpis set volume_usd = volume_usd * 1.1"
        " where activity_date = %s",
        "update marts.exchange_daily_kpis set volume_usd = volume_usd / 1.1"
        " where activity_date = %s",
        (LAST,),
    ):
        assert _critical_failures(built["url"]) == {
            (EXCHANGE, EXCHANGE_TRADES),
            ("product_daily_kpis", PRODUCT_SUMS),
        }
    assert validate(built["url"]).passed


def test_one_more_trader_on_one_product_fails(built: dict) -> None:
    with psycopg.connect(built["url"]) as conn:
        (product,) = conn.execute(
            "select product_id from marts.product_daily_kpis where activity_date = %s"
            " and traders > 0 order by product_id limit 1",
            (LAST,),
        ).fetchone()
    where = " where activity_date = %s and product_id = %s"
    with corrupted(
        built["url"],
        "update marts.product_daily_kpis set traders = traders + 1" + where,
        "update marts.product_daily_kpis set traders = traders - 1" + where,
        (LAST, product),
    ):
        with pytest.raises(QualityGateFailed) as info:
            validate(built["url"])
        failures = {(f.suite, f.expectation): f for f in info.value.result.critical_failures}
        # the product's stage run averages its daily traders: that run does not add up either
        assert set(failures) == {
            ("product_daily_kpis", PRODUCT_TRADES),
            ("product_stage_kpis", STAGE_SUMS),
        }
        (row,) = failures["product_daily_kpis", PRODUCT_TRADES].examples
        assert row["product_id"] == product and row["activity_date"] == LAST.isoformat()
        assert row["mart_traders"] == row["expected_traders"] + 1


def test_three_more_registrations_in_a_channel_fail(built: dict) -> None:
    where = " where registration_date = %s and acquisition_channel = 'organic'"
    with corrupted(
        built["url"],
        "update marts.acquisition_funnel set registered_users = registered_users + 3" + where,
        "update marts.acquisition_funnel set registered_users = registered_users - 3" + where,
        (LAST,),
    ):
        # the channel's step rates are over the wrong registrations too
        assert _critical_failures(built["url"]) == {
            ("acquisition_funnel", FUNNEL),
            ("acquisition_funnel", FUNNEL_RATES),
            (EXCHANGE, REGISTRATIONS),
        }


def test_one_more_user_in_a_tier_fails(built: dict) -> None:
    where = " where activity_date = %s and tier = 'new'"
    with corrupted(
        built["url"],
        "update marts.user_tier_daily set users = users + 1" + where,
        "update marts.user_tier_daily set users = users - 1" + where,
        (LAST,),
    ):
        # the tier's own spells and the day's transitions do not add up either
        assert _critical_failures(built["url"]) == {
            ("user_tier_daily", TIERS),
            ("user_tier_daily", TIER_SPELLS),
            ("user_tier_transitions", TRANSITIONS),
        }


LAST_3 = LAST - timedelta(days=LATE)

# each mart's key
KEYS = {
    EXCHANGE: ("activity_date",),
    "user_tier_daily": ("activity_date", "tier"),
    "user_tier_transitions": ("activity_date", "from_tier", "to_tier"),
    "retention_cohorts": ("cohort_week", "acquisition_channel", "week_number"),
    "product_daily_kpis": ("product_id", "activity_date"),
    "product_stage_kpis": ("product_id", "stage_start_date"),
    "channel_performance": ("month", "acquisition_channel"),
    "campaign_performance": ("campaign_id",),
    "feedback_daily": ("created_date", "category", "channel"),
    "acquisition_funnel": ("registration_date", "acquisition_channel"),
    "nps_weekly": ("week_start", "product_line"),
    "cohort_ltv": ("cohort_month", "acquisition_channel", "months_since_registration"),
    "dormant_recall_targets": ("user_id",),
}

# (mart, the row picked (among the daily run's days, except for the retention cohorts:
# the daily run's last day, a Friday, ends no week, so --full checks them; the campaigns and
# the dormant targets are checked whole every run), column, how it is made wrong (a count off
# by one, a total, a rate or an average off by 10%), the critical failures that must follow:
# exactly these)
CORRUPTIONS = [
    (
        EXCHANGE,
        f"activity_date = '{LAST}'",
        "new_traders",
        "+1",
        {(EXCHANGE, EXCHANGE_ACTIVITY)},
    ),
    (
        EXCHANGE,
        f"activity_date = '{LAST}'",
        "active_users",
        "+1",
        {(EXCHANGE, EXCHANGE_ACTIVITY), (EXCHANGE, "stickiness = active_users / mau")},
    ),
    (
        EXCHANGE,
        f"activity_date = '{LAST}' and deposits_usd > 0",
        "deposits_usd",
        "x1.1",
        {(EXCHANGE, EXCHANGE_ACTIVITY)},
    ),
    (
        EXCHANGE,
        f"activity_date = '{LAST}'",
        "mau",
        "+1",
        {(EXCHANGE, ROLLING), (EXCHANGE, "stickiness = active_users / mau")},
    ),
    (
        EXCHANGE,
        f"activity_date = '{LAST}'",
        "wau",
        "+1",
        {(EXCHANGE, ROLLING)},
    ),
    (
        "user_tier_daily",
        f"activity_date = '{LAST}' and tier = 'active' and volume_usd > 0",
        "volume_usd",
        "x1.1",
        {("user_tier_daily", TIER_ACTIVITY)},
    ),
    (
        "user_tier_daily",
        f"activity_date = '{LAST}' and tier = 'new' and active_users > 0",
        "active_users",
        "+1",
        {("user_tier_daily", TIER_ACTIVITY)},
    ),
    (
        "user_tier_transitions",
        f"activity_date >= '{LAST_3}'",
        "users",
        "+1",
        {("user_tier_transitions", TRANSITIONS)},
    ),
    (
        "retention_cohorts",
        "week_number > 0 and retained_users < cohort_users",
        "retained_users",
        "+1",
        {
            ("retention_cohorts", "retained_users = the cohort's users trading in the week"),
            ("retention_cohorts", "retention_rate = retained_users / cohort_users"),
        },
    ),
    (
        "retention_cohorts",
        "true",
        "cohort_users",
        "+1",
        {
            (
                "retention_cohorts",
                "cohort_users = users per week of their first trade and channel, at every week",
            ),
            ("retention_cohorts", "retention_rate = retained_users / cohort_users"),
        },
    ),
    (
        "product_daily_kpis",
        f"activity_date = '{LAST}'",
        "new_traders",
        "+1",
        {("product_daily_kpis", PRODUCT_ACTIVITY), ("product_stage_kpis", STAGE_SUMS)},
    ),
    (
        "product_daily_kpis",
        f"activity_date >= '{LAST_3}' and subscribe_usd > 0",
        "subscribe_usd",
        "x1.1",
        {("product_daily_kpis", PRODUCT_ACTIVITY)},
    ),
    (
        "product_stage_kpis",
        "is_current and volume_usd > 0",
        "volume_usd",
        "x1.1",
        {("product_stage_kpis", STAGE_SUMS)},
    ),
    (
        "product_stage_kpis",
        "is_current",
        "days_in_stage",
        "+1",
        {
            ("product_stage_kpis", STAGE_SUMS),
            ("product_stage_kpis", "days_in_stage = stage_end_date - stage_start_date + 1"),
        },
    ),
    (
        "channel_performance",
        f"month = date_trunc('month', date '{LAST}')::date",
        "new_traders",
        "+1",
        {("channel_performance", "new_traders = users per month of their first trade and channel")},
    ),
    (
        "campaign_performance",
        "true",
        "participants",
        "+1",
        {("campaign_performance", CAMPAIGN_MEMBERS)},
    ),
    (
        "feedback_daily",
        f"created_date >= '{LAST_3}' and resolved_tickets < tickets",
        "resolved_tickets",
        "+1",
        {("feedback_daily", TICKET_OUTCOMES)},
    ),
    (
        "acquisition_funnel",
        f"registration_date >= '{LAST_3}' and traded_users < registered_users",
        "traded_users",
        "+1",
        {("acquisition_funnel", FUNNEL_STEPS), ("acquisition_funnel", FUNNEL_RATES)},
    ),
    (
        "acquisition_funnel",
        f"registration_date >= '{LAST_3}' and median_hours_to_first_trade is not null",
        "median_hours_to_first_trade",
        "x1.1",
        {("acquisition_funnel", FUNNEL_STEPS)},
    ),
    (
        "acquisition_funnel",
        f"registration_date >= '{LAST_3}' and kyc_rate is not null",
        "kyc_rate",
        "x1.1",
        {("acquisition_funnel", FUNNEL_RATES)},
    ),
    (
        EXCHANGE,
        f"activity_date = '{LAST}'",
        "stickiness",
        "x1.1",
        {(EXCHANGE, "stickiness = active_users / mau")},
    ),
    (
        "feedback_daily",
        f"created_date >= '{LAST_3}' and avg_csat is not null",
        "avg_csat",
        "x1.1",
        {("feedback_daily", TICKET_OUTCOMES)},
    ),
    (
        "feedback_daily",
        f"created_date >= '{LAST_3}' and median_first_response_minutes is not null",
        "median_first_response_minutes",
        "x1.1",
        {("feedback_daily", TICKET_OUTCOMES)},
    ),
    (
        "nps_weekly",
        f"week_start >= date_trunc('week', date '{LAST_3}')::date and nps <> 0",
        "nps",
        "x1.1",
        {("nps_weekly", "nps = 100 x (promoters - detractors) / responses")},
    ),
    (
        "channel_performance",
        f"month = date_trunc('month', date '{LAST}')::date and cac_usd > 0",
        "cac_usd",
        "x1.1",
        {("channel_performance", "cac_usd = spend_usd / new_traders")},
    ),
    (
        "cohort_ltv",
        "(cohort_month + make_interval(months => months_since_registration))::date"
        f" = date_trunc('month', date '{LAST}')::date and cumulative_fees_usd > 0",
        "cumulative_fees_usd",
        "x1.1",
        {
            ("cohort_ltv", COHORT_FEES),
            ("cohort_ltv", "ltv_usd = cumulative_fees_usd / cohort_users"),
        },
    ),
    (
        "cohort_ltv",
        "(cohort_month + make_interval(months => months_since_registration))::date"
        f" = date_trunc('month', date '{LAST}')::date and ltv_usd > 0",
        "ltv_usd",
        "x1.1",
        {("cohort_ltv", "ltv_usd = cumulative_fees_usd / cohort_users")},
    ),
    (
        "retention_cohorts",
        "week_number > 0 and retention_rate > 0",
        "retention_rate",
        "x1.1",
        {("retention_cohorts", "retention_rate = retained_users / cohort_users")},
    ),
    (
        "campaign_performance",
        "incremental_volume_usd <> 0",
        "incremental_volume_usd",
        "x1.1",
        {
            (
                "campaign_performance",
                "incremental_volume_usd = participants x (participants' volume change per"
                " participant - controls' per control)",
            )
        },
    ),
    (
        "campaign_performance",
        "cost_usd > 0",
        "cost_usd",
        "x1.1",
        {("campaign_performance", CAMPAIGN_MEMBERS)},
    ),
    (
        "product_stage_kpis",
        "is_current and avg_daily_traders > 0",
        "avg_daily_traders",
        "x1.1",
        {("product_stage_kpis", STAGE_SUMS)},
    ),
    (
        "dormant_recall_targets",
        "lifetime_volume_usd > 0",
        "lifetime_volume_usd",
        "x1.1",
        {("dormant_recall_targets", DORMANT_TOTALS)},
    ),
    (
        "dormant_recall_targets",
        "latest_equity_usd > 0",
        "latest_equity_usd",
        "x1.1",
        {("dormant_recall_targets", DORMANT_TOTALS)},
    ),
    (
        "dormant_recall_targets",
        "days_since_active is not null",
        "days_since_active",
        "+1",
        {("dormant_recall_targets", "days_since_active = as-of date - last_active_date")},
    ),
]


def _batches(corruptions: list[tuple]) -> list[list[tuple]]:
    """The corruptions in as few validations as can tell them apart: no two in one batch
    share an expectation they must fail, and the retention cohorts' (checked with --full)
    are a batch of their own."""
    batches: list[list[tuple]] = []
    for full in (False, True):
        these: list[list[tuple]] = []
        for c in corruptions:
            if (c[0] == "retention_cohorts") != full:
                continue
            for batch in these:
                if not any(c[4] & other[4] for other in batch):
                    batch.append(c)
                    break
            else:
                these.append([c])
        batches += these
    return batches


BATCHES = _batches(CORRUPTIONS)


@pytest.mark.parametrize(
    "batch", BATCHES, ids=[",".join(f"{c[0]}.{c[2]}{c[3]}" for c in b) for b in BATCHES]
)
def test_a_wrong_number_fails_the_reconciliation_that_compares_it(
    built: dict, batch: list[tuple]
) -> None:
    """One number of one row per mart and column, among the days a daily run checks, made
    wrong (a count off by one, a total, a rate or an average off by 10%): the run fails
    exactly the expectations each must fail, and each one's examples show the row."""
    url = built["url"]
    restore = []
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            made = []
            for table, where, column, change, failures in batch:
                keys = KEYS[table]
                picked = conn.execute(
                    f"select {', '.join(keys)}, {column} from marts.{table} where {where}"
                    f" order by {', '.join(keys)} desc limit 1"
                ).fetchone()
                assert picked is not None, f"no row of {table} where {where}"
                *key_values, original = picked
                wrong = original + 1 if change == "+1" else original * Decimal("1.1")
                assert wrong != original
                match = " and ".join(f"{k} = %s" for k in keys)
                update = f"update marts.{table} set {column} = %s where {match}"
                assert conn.execute(update, (wrong, *key_values)).rowcount == 1
                restore.append((update, original, key_values))
                made.append((dict(zip(keys, key_values, strict=True)), failures))
            full = batch[0][0] == "retention_cohorts"
            with pytest.raises(QualityGateFailed) as info:
                validate(url, full=full)
            found = {(r.suite, r.expectation): r for r in info.value.result.critical_failures}
            assert set(found) == set().union(*(c[4] for c in batch))
            for key, failures in made:
                for failure in failures:
                    shown = [
                        {k: v for k, v in row.items() if k in key}
                        for row in found[failure].examples
                    ]
                    expected = {
                        k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in key.items()
                    }
                    assert any(all(expected[k] == v for k, v in row.items()) for row in shown), (
                        failure,
                        key,
                        found[failure].examples,
                    )
        finally:
            for update, original, key_values in reversed(restore):
                assert conn.execute(update, (original, *key_values)).rowcount == 1


def test_an_old_day_is_left_to_the_full_audit(built: dict) -> None:
    """A daily run does not read history: only --full finds a wrong number far back."""
    old = START + timedelta(days=2)
    with corrupted(
        built["url"],
        "update marts.exchange_daily_kpis set trade_count = trade_count + 1"
        " where activity_date = %s",
        "update marts.exchange_daily_kpis set trade_count = trade_count - 1"
        " where activity_date = %s",
        (old,),
    ):
        daily = validate(built["url"])
        assert daily.passed and daily.scope.since == LAST - timedelta(days=LATE)
        assert _critical_failures(built["url"], full=True) == {
            (EXCHANGE, EXCHANGE_TRADES),
            ("product_daily_kpis", PRODUCT_SUMS),
        }
    assert validate(built["url"], full=True).passed
