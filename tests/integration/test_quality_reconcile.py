"""The quality gate checks numbers: marts built by dbt on simulated data reconcile with the
layers below them, a wrong number fails the exact expectation that compares it, and a daily
run checks only the days its new loads can change (``full=True`` checks every day)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

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
        (failure,) = info.value.result.critical_failures
        assert (failure.suite, failure.expectation) == ("product_daily_kpis", PRODUCT_TRADES)
        (row,) = failure.examples
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
        assert _critical_failures(built["url"]) == {
            ("acquisition_funnel", FUNNEL),
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
        assert _critical_failures(built["url"]) == {("user_tier_daily", TIERS)}


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
