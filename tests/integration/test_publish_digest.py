"""Digests, what moved, restatements and the backtest on a real warehouse and a real SMTP
server: a small exchange of four products over six weeks with ordinary weekday swings, one
product collapsing on a known day, and late records restating published days.

Validation is recorded as passed directly (the gate has its own tests): these tests are
about what publishing says and sends.
"""

from __future__ import annotations

from datetime import date, timedelta

import psycopg
import pytest
from click.testing import CliRunner
from test_publish_support import (
    MART_DDL,
    html_rows,
    html_text,
    mail_environment,
    read_mail,
    text_of,
)

from exops.cli import main
from exops.publish import publish
from exops.publish.backtest import backtest
from exops.publish.rules import load_rules
from exops.quality.store import ensure_quality_tables

# not run again on PostgreSQL 15 (make test-pg15): baselines, ranking and restatements computed in
# Python over plain tables
pytestmark = pytest.mark.server_agnostic

COLLAPSE = date(2026, 9, 30)  # a Wednesday: ETH-USDT's volume collapses
FIRST = COLLAPSE - timedelta(days=41)
NEXT = COLLAPSE + timedelta(days=1)
# product, line, share of the exchange's volume, share of its traders
PRODUCTS = (
    ("BTC-USDT", "spot", 0.45, 0.40),
    ("ETH-USDT", "spot", 0.35, 0.30),
    ("SOL-USDT", "spot", 0.10, 0.15),
    ("BTC-PERP", "derivatives", 0.10, 0.15),
)
TIERS = (("new", 0.1), ("active", 0.5), ("high_net_worth", 0.35), ("dormant", 0.05))
CATEGORIES = ("trading", "deposit_withdrawal", "kyc", "app_bug")
RECIPIENTS = {"ops": "ops1@platform.test", "risk": "risk@platform.test", "data_eng": "de@x.test"}


def _weekday_factor(d: date) -> float:
    """Ordinary swings: quiet weekends, a busy Monday, a little noise on every day."""
    base = {5: 0.6, 6: 0.65, 0: 1.15}.get(d.weekday(), 1.0)
    return base * (1 + 0.02 * ((d.toordinal() * 7) % 5 - 2))


def _product_rows(d: date, eth_factor: float = 1.0) -> list[tuple]:
    f = _weekday_factor(d)
    rows = []
    for product, line, vshare, tshare in PRODUCTS:
        k = eth_factor if product == "ETH-USDT" else 1.0
        volume = round(2_000_000 * f * vshare * k, 2)
        traders = max(1, round(400 * f * tshare * (k if k < 1 else 1)))
        rows.append(
            (
                product,
                line,
                d,
                "daily_operations",
                traders * 3,
                volume,
                volume * 0.001,
                traders,
                1,
                0,
                0,
                0,
            )
        )
    return rows


def _write_day(conn: psycopg.Connection, d: date, eth_factor: float = 1.0) -> None:
    conn.execute("delete from marts.product_daily_kpis where activity_date = %s", (d,))
    conn.execute("delete from marts.exchange_daily_kpis where activity_date = %s", (d,))
    conn.execute("delete from marts.user_tier_daily where activity_date = %s", (d,))
    conn.execute("delete from marts.feedback_daily where created_date = %s", (d,))
    rows = _product_rows(d, eth_factor)
    with conn.cursor() as cur:
        cur.executemany(
            "insert into marts.product_daily_kpis values"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
    trades = sum(r[4] for r in rows)
    volume = sum(r[5] for r in rows)
    traders = sum(r[7] for r in rows)
    conn.execute(
        "insert into marts.exchange_daily_kpis values"
        " (%s, %s, %s, %s, %s, %s, 2000, 5000, 0.1, 10, 4, 100000, 80000)",
        (d, trades, volume, volume * 0.001, traders, traders + 50),
    )
    for tier, share in TIERS:
        conn.execute(
            "insert into marts.user_tier_daily values (%s, %s, 500, %s, %s, %s, 0)",
            (d, tier, round(traders * share), volume * share, volume * share * 0.001),
        )
    f = _weekday_factor(d)
    for category in CATEGORIES:
        conn.execute(
            "insert into marts.feedback_daily values (%s, %s, 'chat', %s, 1, 1, 30, 4.5, 1)",
            (d, category, round(20 * f)),
        )


def _validated(conn: psycopg.Connection, as_of: date) -> None:
    ensure_quality_tables(conn)
    conn.execute(
        "insert into quality.validation_runs (run_id, as_of, passed, expectations,"
        " critical_failures, warnings, started_at) values (%s, %s, true, 1, 0, 0, now())",
        (f"stub-{as_of}", as_of),
    )


def _ops_mail(messages) -> list:
    return [m for m in messages if m["Subject"].startswith("[exops] ops digest")]


@pytest.fixture(scope="module")
def story(warehouse_url, tmp_path_factory):
    """Publish the day before the collapse, the collapse, then the next day after late
    records restated both; what was sent after each step."""
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute(MART_DDL)
        d = FIRST
        while d < COLLAPSE:
            _write_day(conn, d)
            d += timedelta(days=1)
        # a small NPS sample that drops 21%: not evaluated
        conn.execute(
            "insert into marts.nps_weekly values ('2026-09-21', 'all', 59, 30, 19, 10, 33.9),"
            " ('2026-09-28', 'all', 59, 27, 20, 12, 25.4)"
        )
        for as_of in (COLLAPSE - timedelta(days=1), COLLAPSE, NEXT):
            _validated(conn, as_of)
    var = tmp_path_factory.mktemp("var")
    steps = {}
    with mail_environment(var, RECIPIENTS) as mail:
        steps["ordinary"] = publish(warehouse_url, COLLAPSE - timedelta(days=1))
        steps["after_ordinary"] = read_mail(mail)
        with psycopg.connect(warehouse_url, autocommit=True) as conn:
            _write_day(conn, COLLAPSE, eth_factor=0.05)
        steps["collapse"] = publish(warehouse_url, COLLAPSE)
        steps["after_collapse"] = read_mail(mail)
        # late records: the collapse was a delivery arriving late, and the day before
        # gets 5% more volume from a re-delivery
        with psycopg.connect(warehouse_url, autocommit=True) as conn:
            _write_day(conn, COLLAPSE)
            _write_day(conn, NEXT)
            conn.execute(
                "update marts.exchange_daily_kpis set volume_usd = volume_usd * 1.05"
                " where activity_date = %s",
                (COLLAPSE - timedelta(days=1),),
            )
        steps["next"] = publish(warehouse_url, NEXT)
        steps["after_next"] = read_mail(mail)
        steps["rerun"] = publish(warehouse_url, NEXT)
        steps["after_rerun"] = read_mail(mail)
        yield {"url": warehouse_url, "var": var, **steps}


def test_ordinary_weekday_swings_send_no_alert(story):
    subjects = [m["Subject"] for m in story["after_ordinary"]]
    assert subjects == ["[exops] Daily ops report 2026-09-29"]
    assert story["ordinary"].alerts_found == 0


def test_one_digest_per_audience_naming_the_collapsed_product(story):
    new = story["after_collapse"][len(story["after_ordinary"]) :]
    assert sorted(m["Subject"] for m in new) == [
        "[exops] Daily ops report 2026-09-30",
        "[exops] ops digest 2026-09-30: 3 alerts: exchange_volume_drop",
    ]
    (digest,) = _ops_mail(new)
    assert digest["To"] == "ops1@platform.test"
    plain = digest.get_body(("plain",)).get_content()
    # ranked by USD at stake: the volume drop first, then the trades and traders that drive it
    assert "1. exchange_volume_drop on 2026-09-30 (critical)" in plain
    assert "trades_drop on 2026-09-30 (critical)" in plain
    assert "traders_drop on 2026-09-30 (warning)" in plain
    assert plain.count("what moved: product_id ETH-USDT") == 3
    # ETH-USDT's own baseline (the median of the same Wednesdays) and its value that day;
    # the other products rose a little, so it carries a bit more than the whole change
    assert "what moved: product_id ETH-USDT: 700,000 -> 35,700 (-94.9%, 104% of the change)" in (
        plain
    )
    assert "what moved: product_line spot:" in plain
    assert "BTC-USDT" not in plain  # unchanged products are not named
    assert "at stake: 638,300 USD of volume" in plain
    html = digest.get_body(("html",)).get_content()
    assert any(row[:1] == ["product_id ETH-USDT"] for row in html_rows(html))
    assert story["collapse"].alerts_emailed == 3 and story["collapse"].alert_mails == 1


def test_the_report_has_the_same_alerts_and_says_what_was_not_evaluated(story):
    html = (story["var"] / "reports" / "2026-09-30" / "report.html").read_text()
    shown, rows = html_text(html), html_rows(html)
    assert "Alerts of the day" in shown
    assert "exchange_volume_drop on 2026-09-30" in shown
    assert any(row[:1] == ["product_id ETH-USDT"] for row in rows)
    assert "Not evaluated: sample too small" in shown
    assert ["nps_drop", "all", "2026-09-28", "59 responses"] in [row[:4] for row in rows]
    assert story["collapse"].not_evaluated >= 1


def test_the_next_report_lists_restated_numbers_and_the_alert_is_retracted_once(story):
    new = story["after_next"][len(story["after_collapse"]) :]
    assert sorted(m["Subject"] for m in new) == [
        "[exops] Daily ops report 2026-10-01",
        "[exops] ops digest 2026-10-01: 0 alerts, 3 retracted",
    ]
    (digest,) = _ops_mail(new)
    plain = digest.get_body(("plain",)).get_content()
    assert "RETRACTED: exchange_volume_drop on 2026-09-30: volume_usd of exchange_daily_kpis" in (
        plain
    )
    assert "the rule no longer fires" in plain
    (report,) = [m for m in new if "Daily ops report" in m["Subject"]]
    text = text_of(report)
    before = 2_000_000 * _weekday_factor(COLLAPSE - timedelta(days=1))
    assert (
        f"2026-09-29 volume_usd of exchange_daily_kpis: {before:,.0f} -> {before * 1.05:,.0f}"
        " (+5.0%)" in text
    )
    assert "2026-09-30 volume_usd of exchange_daily_kpis:" in text
    assert "2026-09-30 traders of exchange_daily_kpis:" in text
    assert "Restated numbers" in html_text(text)
    assert story["next"].restated >= 3 and story["next"].alerts_retracted == 3
    # the rerun sends nothing, and lists the same restatements
    assert len(story["after_rerun"]) == len(story["after_next"])
    assert (
        story["rerun"].alerts_retracted == 0 and story["rerun"].restated == story["next"].restated
    )
    with psycopg.connect(story["url"]) as conn:
        kinds = conn.execute(
            "select kind, count(*) from publish.alert_deliveries group by 1 order by 1"
        ).fetchall()
    assert kinds == [("alert", 3), ("retraction", 3)]


def test_backtest_prints_per_rule_days_and_rate_sending_nothing(story):
    rules = [r for r in load_rules() if r.name in ("exchange_volume_drop", "traders_drop")]
    with psycopg.connect(story["url"]) as conn:
        conn.execute("update marts.product_daily_kpis set volume_usd = volume_usd")
        results = {r.rule: r for r in backtest(conn, rules, FIRST, NEXT)}
    # the collapse was restated away: on today's marts, nothing fires
    assert results["exchange_volume_drop"].days == []
    mails = len(read_mail(story["var"] / "mail"))
    with psycopg.connect(story["url"], autocommit=True) as conn:
        _write_day(conn, COLLAPSE - timedelta(days=7), eth_factor=0.05)
    result = CliRunner().invoke(
        main,
        [
            "alerts",
            "backtest",
            "--rule",
            "exchange_volume_drop",
            "--from",
            str(FIRST),
            "--to",
            str(NEXT),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"backtest {FIRST} .. {NEXT} (43 days), nothing sent",
        "exchange_volume_drop: fired on 1 day(s) of 43, 2.1 per 90 days",
        "  2026-09-23 Wed: all (-30%)",
    ]
    assert len(read_mail(story["var"] / "mail")) == mails
    bad = CliRunner().invoke(
        main, ["alerts", "backtest", "--rule", "nope", "--from", "2026-09-01", "--to", "2026-09-02"]
    )
    assert bad.exit_code != 0 and "no rule named nope" in bad.output
