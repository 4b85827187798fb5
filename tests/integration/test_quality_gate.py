"""The quality gate on a real warehouse: a clean sample passes; a wrong number in a mart
blocks publishing and sends data engineers exactly one data-quality email, however often it
runs. (tests/integration/test_quality_reconcile.py: the same on marts dbt built.)"""

from __future__ import annotations

import psycopg
import pytest
from test_publish_support import AS_OF, build_sample, mail_environment, read_mail, text_of

from exops.publish import PublishRefused, publish
from exops.quality import QualityGateFailed, validate

EXCHANGE_TRADES = "trade_count, volume_usd, fees_usd, traders = the day's priced trades"
PRODUCT_SUMS = "trade_count, volume_usd, fees_usd summed over products = exchange_daily_kpis"
FUNNEL = "registered_users = staged users per registration date and channel"
REGISTRATIONS = "registrations = acquisition_funnel registered_users over channels"


@pytest.fixture(scope="module")
def env(warehouse_url, tmp_path_factory):
    build_sample(warehouse_url)
    var = tmp_path_factory.mktemp("var")
    recipients = {
        "data_eng": "de1@platform.test,de2@platform.test",
        "ops": "ops@platform.test",
        "risk": "risk@platform.test",
    }
    with mail_environment(var, recipients) as mail:
        yield {"url": warehouse_url, "var": var, "mail": mail}


def test_clean_sample_passes_and_is_recorded(env):
    result = validate(env["url"])
    assert result.as_of == AS_OF  # from audit.partitions
    assert result.passed, result.summary()
    suites = {r.suite for r in result.results}
    assert {"exchange_daily_kpis", "user_tier_daily", "raw_loads", "raw_trades"} <= suites
    names = {(r.suite, r.expectation) for r in result.results}
    assert ("exchange_daily_kpis", EXCHANGE_TRADES) in names
    assert ("acquisition_funnel", FUNNEL) in names
    assert ("user_tier_daily", "tiers cover every registered user each day") in names
    assert ("raw_trades", "a USD price for every traded quote asset and day") in names
    assert ("raw_loads", "rows in raw = rows_loaded of the partition's current load") in names
    assert ("risk_alerts", "self_trade alerts = users' self-trade volume per day") in names
    with psycopg.connect(env["url"]) as conn:
        stored = conn.execute(
            "select count(*), bool_and(success) from quality.validation_results where run_id = %s",
            (result.run_id,),
        ).fetchone()
        run = conn.execute(
            "select passed, as_of, window_start from quality.validation_runs where run_id = %s",
            (result.run_id,),
        ).fetchone()
    assert stored == (len(result.results), True)
    assert run == (True, AS_OF, None)  # the first run checks every day
    assert result.data_docs is not None and result.data_docs.exists()
    assert read_mail(env["mail"]) == []


def test_broken_mart_blocks_publishing_with_one_dq_email(env):
    with psycopg.connect(env["url"], autocommit=True) as conn:
        conn.execute(
            "update marts.exchange_daily_kpis set volume_usd = volume_usd * 1.1"
            " where activity_date = %s",
            (AS_OF,),
        )
        conn.execute(
            "update marts.acquisition_funnel set registered_users = registered_users + 3"
            " where registration_date = '2026-09-29' and acquisition_channel = 'kol'"
        )
    for attempt in range(2):
        with pytest.raises(QualityGateFailed) as info:
            validate(env["url"])
        failed = {(r.suite, r.expectation) for r in info.value.result.critical_failures}
        assert failed == {
            ("exchange_daily_kpis", EXCHANGE_TRADES),
            ("product_daily_kpis", PRODUCT_SUMS),
            ("acquisition_funnel", FUNNEL),
            (
                "acquisition_funnel",
                "kyc_rate, deposit_rate, trade_rate = each step / registered_users",
            ),
            ("exchange_daily_kpis", REGISTRATIONS),
        }
        assert info.value.result.dq_email_sent is (attempt == 0)
    messages = read_mail(env["mail"])
    assert len(messages) == 1
    (msg,) = messages
    assert msg["To"] == "de1@platform.test, de2@platform.test"
    assert "[exops data quality] 2026-09-30" in msg["Subject"]
    body = text_of(msg)
    assert "Suite: exchange_daily_kpis" in body
    assert f"Expectation: {EXCHANGE_TRADES} (critical)" in body
    assert f"Expectation: {FUNNEL} (critical)" in body
    assert '"unexpected_rows": 1' in body  # the observed value: one mismatching row
    # the example rows: the mart's number beside the one recomputed from the layer below
    assert '"mart_volume_usd": 440000.0' in body and '"expected_volume_usd": 400000.0' in body
    assert '"mart_registered_users": 3' in body and '"expected_registered_users": 0' in body
    with pytest.raises(PublishRefused) as refused:
        publish(env["url"])
    assert EXCHANGE_TRADES in str(refused.value)
    assert len(read_mail(env["mail"])) == 1
    assert not (env["var"] / "reports").exists()
