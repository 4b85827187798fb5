"""Rules that don't cry wolf: robust baselines, known incidents left out, minimum change,
what moved, ranking and restatement tolerances (no services needed)."""

from __future__ import annotations

import math
import textwrap
from datetime import date, timedelta

import pytest

from exops.marts import mart
from exops.publish import digest
from exops.publish.alerts import fires
from exops.publish.baseline import (
    IncidentFileError,
    comparison_days,
    incident_days,
    load_incidents,
    mad,
    robust_baseline,
)
from exops.publish.restatements import beyond_tolerance, tolerance_text
from exops.publish.rules import parse_rules
from exops.publish.whatmoved import breakdowns, is_additive, rank
from exops.settings import SettingError

D = date(2026, 9, 30)  # a Wednesday
EXCHANGE = mart("exchange_daily_kpis")


def _rule(condition: str, extra: str = "") -> object:
    text = f"""\
    rules:
      - name: r
        mart: exchange_daily_kpis
        metric: volume_usd
        condition: {condition}
        recipients: [ops]
    {extra}"""
    (rule,) = parse_rules(textwrap.dedent(text))
    return rule


def test_median_and_mad_ignore_one_outlier_where_mean_and_stdev_do_not():
    values = [100.0, 102.0, 98.0, 101.0, 99.0, 100.0, 103.0, 5.0]  # one outage among them
    base = robust_baseline(values)
    assert base.median == 100.0
    assert mad(values) == 1.5
    assert base.spread == pytest.approx(1.4826 * 1.5)
    # a fresh drop to 80 is 9 spreads out, robustly; with mean/stdev (88.5, 33.6) it is not
    assert base.robust_z(80.0) == pytest.approx((80 - 100) / (1.4826 * 1.5))
    assert abs(base.robust_z(80.0)) > 3


def test_a_flat_baseline_is_infinitely_far_from_any_other_value():
    base = robust_baseline([5.0, 5.0, 5.0])
    assert base.robust_z(5.0) == 0.0
    assert base.robust_z(4.0) == -math.inf


def test_comparison_days_keep_the_weekday_and_leave_out_the_day_and_incidents():
    days = [D - timedelta(days=i) for i in range(60)]
    incident = D - timedelta(days=14)
    chosen = comparison_days(days, D, 4, weekday=True, excluded={incident})
    assert chosen == [D - timedelta(days=k) for k in (35, 28, 21, 7)]
    assert D not in chosen and incident not in chosen
    assert all(d.weekday() == D.weekday() for d in chosen)


def _weekly(values_by_weeks_ago: dict[int, float], today: float) -> dict[date, float]:
    points = {D - timedelta(days=7 * k): v for k, v in values_by_weeks_ago.items()}
    points[D] = today
    return points


def test_an_anomaly_rule_fires_on_a_collapse_but_not_on_an_ordinary_swing():
    rule = _rule(
        "{type: anomaly, window: 8, seasonality: weekday, z: 3, direction: drop,"
        " min_relative_change: 0.25}"
    )
    history = {k: 1_000_000 + (k % 3) * 40_000 for k in range(1, 9)}
    verdict = fires(rule, EXCHANGE, _weekly(history, 400_000), D)
    assert verdict is not None and verdict.baseline == 1_040_000
    assert verdict.relative == pytest.approx(400_000 / 1_040_000 - 1)
    assert "median of the previous 8 same-weekday points" in verdict.why
    assert len(verdict.baseline_days) == 8
    # -10% is many spreads out on this calm series, but under the 25% minimum change
    assert fires(rule, EXCHANGE, _weekly(history, 936_000), D) is None


def test_a_known_incident_in_the_history_does_not_mask_the_next_collapse():
    rule = _rule(
        "{type: anomaly, window: 4, seasonality: weekday, z: 3, direction: drop,"
        " min_relative_change: 0.25}"
    )
    history = {1: 100.0, 2: 0.0, 3: 102.0, 4: 98.0, 5: 101.0}  # an outage 2 weeks ago
    points = _weekly(history, 60.0)
    incident = D - timedelta(days=14)
    verdict = fires(rule, EXCHANGE, points, D, excluded={incident})
    assert verdict is not None and incident not in verdict.baseline_days
    assert verdict.baseline == pytest.approx(100.5)


def test_min_abs_change_silences_a_large_relative_move_of_a_small_number():
    rule = _rule(
        "{type: change, compared_to: previous, direction: drop, percent: 20}",
        "    min_abs_change: 1000\n",
    )
    small = {D - timedelta(days=1): 1500.0, D: 900.0}  # -40% but only 600 USD
    assert fires(rule, EXCHANGE, small, D) is None
    large = {D - timedelta(days=1): 15_000.0, D: 9_000.0}
    assert fires(rule, EXCHANGE, large, D).baseline == 15_000.0


def test_a_change_rule_compares_with_the_period_before_a_known_incident():
    rule = _rule("{type: change, compared_to: week, direction: drop, percent: 30}")
    points = {D - timedelta(days=14): 100.0, D - timedelta(days=7): 10.0, D: 60.0}
    assert fires(rule, EXCHANGE, points, D) is None  # +500% vs the incident week
    verdict = fires(rule, EXCHANGE, points, D, excluded={D - timedelta(days=7)})
    assert verdict.baseline == 100.0 and "vs 2026-09-16" in verdict.why


def test_min_sample_must_name_a_metric_of_the_mart():
    with pytest.raises(ValueError, match="'responses' is not a metric of exchange_daily_kpis"):
        _rule("{type: threshold, above: 0}", "    min_sample: {metric: responses, at_least: 100}\n")
    rule = _rule("{type: threshold, above: 0}", "    min_sample: {metric: traders, at_least: 20}\n")
    assert rule.min_sample.at_least == 20 and rule.deliver == "digest"


def test_incidents_load_and_bad_ones_say_where(tmp_path):
    good = tmp_path / "incidents.yaml"
    good.write_text(
        "incidents:\n  - day: 2026-09-14\n    description: outage\n"
        "    marts: [exchange_daily_kpis]\n  - day: 2026-09-20\n    description: all marts\n"
    )
    incidents = load_incidents(good)
    assert incident_days(incidents, "exchange_daily_kpis") == {date(2026, 9, 14), date(2026, 9, 20)}
    assert incident_days(incidents, "feedback_daily") == {date(2026, 9, 20)}
    bad = tmp_path / "bad.yaml"
    bad.write_text("incidents:\n  - day: yesterday\n    description: x\n")
    with pytest.raises(IncidentFileError, match=r"incident #1 field 'day'"):
        load_incidents(bad)
    assert load_incidents(tmp_path / "absent.yaml") == []


def test_what_moved_keeps_the_few_segments_that_carry_the_change():
    rows = [
        ("BTC-USDT", 600_000.0, 50_000.0, -550_000.0),
        ("ETH-USDT", 300_000.0, 290_000.0, -10_000.0),
        ("SOL-USDT", 100_000.0, 130_000.0, 30_000.0),  # moved the other way
        ("XRP-USDT", 20_000.0, 15_000.0, -5_000.0),
    ]
    (top,) = rank("product_id", rows)
    assert top.segment == "BTC-USDT"
    assert (top.before, top.after) == (600_000.0, 50_000.0)
    assert top.share == pytest.approx(-550_000 / -535_000)
    spread = [(f"P{i}", 100.0, 70.0, -30.0) for i in range(5)]
    assert [m.segment for m in rank("product_id", spread)] == ["P0", "P1", "P2"]  # at most 3
    assert rank("tier", [("vip", 1.0, 1.0, 0.0)]) == []


def test_breakdowns_follow_the_marts_and_skip_ratios():
    assert ("product_daily_kpis", "volume_usd", "product_id") in breakdowns(
        "exchange_daily_kpis", "volume_usd", {}
    )
    assert breakdowns("feedback_daily", "tickets", {"category": "app_bug"}) == [
        ("feedback_daily", "tickets", "channel")
    ]
    assert not is_additive(mart("acquisition_funnel"), "trade_rate")
    assert breakdowns("acquisition_funnel", "trade_rate", {}) == []


def test_digest_ranks_money_first_then_severity_then_size():
    def row(rule, stake, severity, value, baseline):
        return {
            "rule": rule,
            "segment": "all",
            "stake_usd": stake,
            "severity": severity,
            "value": value,
            "baseline": baseline,
            "relative": None,
        }

    rows = [
        row("tickets", None, "warning", 300, 100),  # +200%
        row("risk", None, "critical", 2, 0),
        row("traders", 570, "warning", 40, 100),
        row("volume", 9_000, "critical", 4e5, 1e6),
        row("nps", None, "warning", 10, 40),  # -75%
    ]
    assert [r["rule"] for r in digest.ranked(rows)] == [
        "volume",
        "traders",
        "risk",
        "tickets",
        "nps",
    ]


def test_restatement_tolerance_is_relative_for_amounts_and_a_unit_for_counts():
    assert not beyond_tolerance("exchange_daily_kpis", "volume_usd", 1_000_000, 1_000_900)
    assert beyond_tolerance("exchange_daily_kpis", "volume_usd", 1_000_000, 1_001_100)
    assert beyond_tolerance("exchange_daily_kpis", "traders", 100, 101)
    assert not beyond_tolerance("exchange_daily_kpis", "traders", 100, 100)
    assert beyond_tolerance("exchange_daily_kpis", "stickiness", 0.2, 0.2003)
    assert beyond_tolerance("exchange_daily_kpis", "volume_usd", None, 5)
    assert tolerance_text() == "0.1% (one unit for counts)"


def test_restatement_tolerances_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("EXOPS_RESTATEMENT_TOLERANCE", "0.01")
    monkeypatch.setenv("EXOPS_RESTATEMENT_COUNT_TOLERANCE", "5")
    assert not beyond_tolerance("exchange_daily_kpis", "volume_usd", 1_000_000, 1_009_000)
    assert beyond_tolerance("exchange_daily_kpis", "volume_usd", 1_000_000, 1_011_000)
    assert not beyond_tolerance("exchange_daily_kpis", "traders", 100, 104)
    assert beyond_tolerance("exchange_daily_kpis", "traders", 100, 105)
    assert tolerance_text() == "1% (5 units for counts)"
    monkeypatch.setenv("EXOPS_RESTATEMENT_TOLERANCE", "5%")
    with pytest.raises(SettingError, match="EXOPS_RESTATEMENT_TOLERANCE"):
        tolerance_text()


def test_cooldown_fires_on_the_onset_only_and_a_replay_from_any_day_agrees():
    from exops.publish.alerts import evaluate_rule

    (rule,) = parse_rules(
        "rules:\n  - name: r\n    mart: exchange_daily_kpis\n    metric: volume_usd\n"
        "    condition: {type: threshold, below: 10}\n    cooldown_days: 5\n"
        "    recipients: [ops]\n"
    )
    low = {D + timedelta(days=k) for k in (0, 1, 2, 9, 20)}  # onsets: D, D+9 (gap > 5), D+20
    days = [D + timedelta(days=k) for k in range(25)]

    class Rows:
        def __init__(self, start, last):
            self.rows = [(d, 1.0 if d in low else 50.0, None) for d in days if start <= d <= last]

        def __iter__(self):
            return iter(self.rows)

    class Conn:
        def execute(self, sql, params):
            return Rows(params[0], params[1])

    def fired(first):
        found = evaluate_rule(Conn(), rule, first, D + timedelta(days=24), with_events=False)
        return [a.day for a in found.alerts]

    assert fired(D) == [D, D + timedelta(days=9), D + timedelta(days=20)]
    # starting the replay mid-episode gives the same answer for the days both cover
    assert fired(D + timedelta(days=2)) == [D + timedelta(days=9), D + timedelta(days=20)]
