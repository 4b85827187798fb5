"""The quality gate on a real warehouse: a clean sample passes; a broken mart blocks
publishing and sends data engineers exactly one data-quality email, however often it runs."""

from __future__ import annotations

import psycopg
import pytest
from test_publish_support import AS_OF, build_sample, mail_environment, read_mail, text_of

from exops.publish import PublishRefused, publish
from exops.quality import QualityGateFailed, validate


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
    assert ("exchange_daily_kpis", "key (activity_date) unique") in names
    assert ("user_tier_daily", "tiers cover every registered user each day") in names
    assert ("raw_trades", "a USD price for every traded quote asset and day") in names
    with psycopg.connect(env["url"]) as conn:
        stored = conn.execute(
            "select count(*), bool_and(success) from audit.validation_results where run_id = %s",
            (result.run_id,),
        ).fetchone()
        run = conn.execute(
            "select passed, as_of from audit.validation_runs where run_id = %s", (result.run_id,)
        ).fetchone()
    assert stored == (len(result.results), True)
    assert run == (True, AS_OF)
    assert result.data_docs is not None and result.data_docs.exists()
    assert read_mail(env["mail"]) == []


def test_broken_mart_blocks_publishing_with_one_dq_email(env):
    with psycopg.connect(env["url"], autocommit=True) as conn:
        conn.execute(
            "insert into marts.exchange_daily_kpis select * from marts.exchange_daily_kpis"
            " where activity_date = %s",
            (AS_OF,),
        )
        conn.execute(
            "update marts.acquisition_funnel set trade_rate = 1.5"
            " where registration_date = '2026-09-05' and acquisition_channel = 'kol'"
        )
    for attempt in range(2):
        with pytest.raises(QualityGateFailed) as info:
            validate(env["url"])
        failed = {(r.suite, r.expectation) for r in info.value.result.critical_failures}
        assert failed == {
            ("exchange_daily_kpis", "key (activity_date) unique"),
            ("acquisition_funnel", "trade_rate within [0, 1]"),
        }
        assert info.value.result.dq_email_sent is (attempt == 0)
    messages = read_mail(env["mail"])
    assert len(messages) == 1
    (msg,) = messages
    assert msg["To"] == "de1@platform.test, de2@platform.test"
    assert "[exops data quality] 2026-09-30" in msg["Subject"]
    body = text_of(msg)
    assert "Suite: exchange_daily_kpis" in body
    assert "Expectation: key (activity_date) unique (critical)" in body
    assert "Expectation: trade_rate within [0, 1] (critical)" in body
    assert '"unexpected_count": 1' in body  # the observed value of the rate check
    assert "1.5" in body  # the example row
    with pytest.raises(PublishRefused) as refused:
        publish(env["url"])
    assert "key (activity_date) unique" in str(refused.value)
    assert len(read_mail(env["mail"])) == 1
    assert not (env["var"] / "reports").exists()
