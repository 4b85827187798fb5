"""The benchmark harness's pure helpers: ratios, medians, verdicts, result keys, landing."""

from __future__ import annotations

import importlib.util
import sys
from datetime import date
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


figures = _load("figures")
landing = _load("landing")


def test_rate_and_ratio():
    assert figures.rate(1_000, 4.0) == 250.0
    assert figures.rate(1_000, 0.0) is None
    assert figures.ratio(130_000, 260_000) == 0.5
    assert figures.ratio(None, 2.0) is None
    assert figures.ratio(1.0, 0.0) is None


def test_median_and_spread_ignore_missing_values():
    assert figures.median([3.0, None, 1.0, 2.0]) == 2.0
    assert figures.median([None]) is None
    assert figures.spread([9.0, 10.0, 11.0]) == pytest.approx(0.2)
    assert figures.spread([10.0]) is None


@pytest.mark.parametrize(
    ("key", "value", "met"),
    [
        ("ingest_vs_copy", 0.5, True),
        ("ingest_vs_copy", 0.49, False),
        ("incremental_vs_full", 0.10, True),
        ("incremental_vs_full", 0.11, False),
        ("airflow_vs_cli", 1.31, False),
        ("dag_parse_max_s", 0.3, False),
        ("dag_parse_max_s", 0.29, True),
        ("peak_rss_mb_max", 2047.0, True),
    ],
)
def test_verdicts_follow_the_issue_targets(key, value, met):
    assert figures.verdicts({key: value})[key] is met


def test_verdict_is_unknown_without_a_figure():
    assert figures.verdicts({})["airflow_vs_cli"] is None


def test_missing_keys_names_what_the_results_file_lacks():
    complete = dict.fromkeys(figures.REQUIRED_KEYS, 1.0)
    assert figures.missing_keys(complete) == []
    del complete["ingest_vs_copy"]
    assert figures.missing_keys(complete) == ["ingest_vs_copy"]


def test_table_aligns_values_and_notes():
    text = figures.table([("a", 1234567.0, "note"), ("long name", None, "")])
    assert text.splitlines() == ["a          1,234,567  note", "long name          -"]


def test_scales_hold_back_the_day_after_the_simulated_days():
    small = landing.SCALES["small"]
    assert (small.users, small.days) == (20_000, 90)
    assert (landing.SCALES["large"].users, landing.SCALES["large"].days) == (200_000, 365)
    assert small.extra_day == date(2026, 10, 30)


def test_landing_and_unlanding_the_extra_day_moves_only_its_partitions(tmp_path):
    zone, extra = tmp_path / "landing", tmp_path / "extra"
    day = date(2026, 10, 30)
    for dt in ("2026-10-29", "2026-10-30"):
        part = zone / "exchange" / "trades" / f"dt={dt}"
        part.mkdir(parents=True)
        (part / "_SUCCESS").touch()
    assert landing.unland_extra_day(zone, extra, day) == 1
    assert not (zone / "exchange/trades/dt=2026-10-30").exists()
    assert (extra / "exchange/trades/dt=2026-10-30/_SUCCESS").exists()
    assert landing.unland_extra_day(zone, extra, day) == 0
    assert landing.land_extra_day(zone, extra, day) == 1
    assert (zone / "exchange/trades/dt=2026-10-30/_SUCCESS").exists()
    assert (zone / "exchange/trades/dt=2026-10-29/_SUCCESS").exists()
