"""The alert-rule file: the shipped rules load, and every kind of mistake has a clear message."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from exops.publish.rules import (
    DEFAULT_RULES_PATH,
    Anomaly,
    Change,
    RuleFileError,
    Threshold,
    load_rules,
    parse_rules,
)

GOOD_RULE = """\
rules:
  - name: volume_drop
    mart: exchange_daily_kpis
    metric: volume_usd
    condition: {type: change, compared_to: week, direction: drop, percent: 30}
    severity: critical
    recipients: [ops]
"""


def _error(text: str) -> str:
    with pytest.raises(RuleFileError) as info:
        parse_rules(textwrap.dedent(text), Path("rules.yaml"))
    return str(info.value)


def test_shipped_rules_load_and_cover_the_ops_defaults():
    rules = {r.name: r for r in load_rules(DEFAULT_RULES_PATH)}
    assert {
        "exchange_volume_drop",
        "traders_drop",
        "week1_retention_drop",
        "funnel_trade_rate_drop",
        "nps_drop",
        "ticket_surge",
        "high_severity_risk_alert",
        "campaign_roi_negative",
    } <= set(rules)
    assert rules["week1_retention_drop"].where == {"acquisition_channel": "all", "week_number": 1}
    assert rules["funnel_trade_rate_drop"].where == {"is_complete": True}
    assert isinstance(rules["campaign_roi_negative"].condition, Threshold)
    assert rules["campaign_roi_negative"].condition.below == 0
    assert rules["high_severity_risk_alert"].recipients == ["risk", "ops"]


def test_a_good_rule_parses_with_defaults():
    (rule,) = parse_rules(GOOD_RULE)
    assert isinstance(rule.condition, Change)
    assert rule.condition.percent == 30
    assert rule.lookback_days == 0 and rule.where == {} and rule.by == []


def test_anomaly_defaults():
    (rule,) = parse_rules(
        GOOD_RULE.replace(
            "{type: change, compared_to: week, direction: drop, percent: 30}", "{type: anomaly}"
        )
    )
    assert isinstance(rule.condition, Anomaly)
    assert (rule.condition.window, rule.condition.z, rule.condition.min_relative_change) == (
        28,
        3.0,
        0.1,
    )


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(RuleFileError) as info:
        load_rules(tmp_path / "nope.yaml")
    assert (
        str(info.value)
        == f"{tmp_path / 'nope.yaml'}: cannot read the file: No such file or directory"
    )


def test_invalid_yaml_names_line_and_column():
    msg = _error("rules:\n  - name: [unclosed\n")
    assert msg.startswith("rules.yaml:3: not valid YAML, column 1: ")


def test_top_level_must_have_rules():
    assert _error("- a\n- b\n") == "rules.yaml: expected a mapping with a 'rules:' list"


def test_unknown_top_level_key():
    msg = _error(GOOD_RULE + "extra: 1\n")
    assert msg == "rules.yaml:8: field 'extra': Extra inputs are not permitted (got 1)"


def test_unknown_mart():
    msg = _error(GOOD_RULE.replace("exchange_daily_kpis", "exchange_daily"))
    assert msg.startswith(
        "rules.yaml:3: rule #1 'volume_drop': field 'mart': unknown mart 'exchange_daily'; "
        "choose one of: exchange_daily_kpis, product_daily_kpis,"
    )


def test_unpublished_mart_is_refused():
    msg = _error(GOOD_RULE.replace("exchange_daily_kpis", "dormant_recall_targets"))
    assert "field 'mart': unknown mart 'dormant_recall_targets'" in msg


def test_unknown_metric_lists_the_allowed_ones():
    msg = _error(GOOD_RULE.replace("metric: volume_usd", "metric: volume"))
    assert msg == (
        "rules.yaml:4: rule #1 'volume_drop': field 'metric': 'volume' is not a metric of "
        "exchange_daily_kpis; choose one of: trade_count, volume_usd, fees_usd, traders, "
        "active_users, wau, mau, stickiness, registrations, new_traders, deposits_usd, "
        "withdrawals_usd"
    )


def test_free_sql_is_not_a_segment():
    text = GOOD_RULE.replace("mart: exchange_daily_kpis", "mart: product_daily_kpis").replace(
        "    severity", '    where: {"1=1; drop table x": spot}\n    severity'
    )
    msg = _error(text)
    assert msg == (
        "rules.yaml:6: rule #1 'volume_drop': field 'where.1=1; drop table x': "
        "'1=1; drop table x' is not a segment column of product_daily_kpis; "
        "choose from: product_id, product_line, lifecycle_stage"
    )


def test_segment_value_out_of_enum():
    text = GOOD_RULE.replace("mart: exchange_daily_kpis", "mart: product_daily_kpis").replace(
        "    severity", "    where: {product_line: futures}\n    severity"
    )
    msg = _error(text)
    assert msg == (
        "rules.yaml:6: rule #1 'volume_drop': field 'where.product_line': 'futures' is not a "
        "product_line; choose one of: spot, derivatives, cross_border, wealth, all"
    )


def test_boolean_segment_needs_a_boolean():
    text = (
        GOOD_RULE.replace("mart: exchange_daily_kpis", "mart: acquisition_funnel")
        .replace("metric: volume_usd", "metric: trade_rate")
        .replace("    severity", "    where: {is_complete: 'yes'}\n    severity")
    )
    assert _error(text) == (
        "rules.yaml:6: rule #1 'volume_drop': field 'where.is_complete': "
        "must be true or false (got 'yes')"
    )


def test_by_column_must_be_a_segment():
    text = GOOD_RULE.replace("    severity", "    by: [tier]\n    severity")
    assert _error(text) == (
        "rules.yaml:6: rule #1 'volume_drop': field 'by.0': 'tier' is not a segment column of "
        "exchange_daily_kpis; choose from: (none: this mart has no segments)"
    )


def test_unknown_condition_type():
    msg = _error(GOOD_RULE.replace("type: change", "type: spike"))
    assert msg == (
        "rules.yaml:5: rule #1 'volume_drop': field 'condition.type': "
        "'type' must be one of: threshold, change, anomaly"
    )


def test_missing_condition_type():
    msg = _error(GOOD_RULE.replace("type: change, ", ""))
    assert msg == (
        "rules.yaml:5: rule #1 'volume_drop': field 'condition.type': "
        "missing 'type' (one of: threshold, change, anomaly)"
    )


def test_bad_condition_field_value():
    msg = _error(GOOD_RULE.replace("percent: 30", "percent: -5"))
    assert msg == (
        "rules.yaml:5: rule #1 'volume_drop': field 'condition.percent': "
        "Input should be greater than 0 (got -5)"
    )


def test_threshold_needs_exactly_one_bound():
    msg = _error(
        GOOD_RULE.replace(
            "{type: change, compared_to: week, direction: drop, percent: 30}",
            "{type: threshold, above: 1, below: 0}",
        )
    )
    assert msg == (
        "rules.yaml:5: rule #1 'volume_drop': field 'condition': "
        "give exactly one of 'above' or 'below'"
    )


def test_week_comparison_needs_a_daily_mart():
    text = GOOD_RULE.replace("exchange_daily_kpis", "nps_weekly").replace(
        "metric: volume_usd", "metric: nps"
    )
    assert _error(text) == (
        "rules.yaml:5: rule #1 'volume_drop': field 'condition.compared_to': "
        "'week' needs a daily mart; nps_weekly is per week: use 'previous'"
    )


def test_change_on_a_mart_without_time_series():
    text = (
        GOOD_RULE.replace("exchange_daily_kpis", "campaign_performance")
        .replace("metric: volume_usd", "metric: roi")
        .replace("compared_to: week, ", "")
    )
    assert _error(text) == (
        "rules.yaml:5: rule #1 'volume_drop': field 'condition.type': campaign_performance "
        "has no time series (one row per campaign_id); only 'threshold' rules apply"
    )


def test_missing_required_field_and_bad_severity_reported_together():
    text = GOOD_RULE.replace("    recipients: [ops]\n", "").replace("critical", "urgent")
    msg = _error(text)
    assert msg.splitlines() == [
        "rules.yaml:6: rule #1 'volume_drop': field 'severity': "
        "Input should be 'warning' or 'critical' (got 'urgent')",
        "rules.yaml:2: rule #1 'volume_drop': field 'recipients': Field required",
    ]


def test_bad_audience_name():
    msg = _error(GOOD_RULE.replace("[ops]", "[ops@example.com]"))
    assert msg == (
        "rules.yaml:7: rule #1 'volume_drop': field 'recipients.0': "
        "String should match pattern '^[a-z][a-z0-9_]*$' (got 'ops@example.com')"
    )


def test_duplicate_rule_names_name_the_second_rule():
    second = GOOD_RULE.split("\n", 1)[1]
    msg = _error(GOOD_RULE + second)
    assert msg == (
        "rules.yaml:8: rule #2 'volume_drop': field 'name': duplicate rule name; rule #1 has it too"
    )


def test_unknown_rule_field_names_the_rule_by_index_and_name():
    msg = _error(GOOD_RULE.replace("    severity", "    threshold: 3\n    severity"))
    assert msg == (
        "rules.yaml:6: rule #1 'volume_drop': field 'threshold': "
        "Extra inputs are not permitted (got 3)"
    )
