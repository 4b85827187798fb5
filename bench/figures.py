"""Pure helpers of the benchmark: ratios, medians, the result record and its table."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

REQUIRED_KEYS = (
    "scale",
    "trades",
    "ingest_rows_per_s",
    "copy_rows_per_s",
    "ingest_vs_copy",
    "to_sql_rows_per_s",
    "floor_s",
    "full_build_s",
    "full_build_vs_floor",
    "incremental_day_s",
    "noop_build_s",
    "day_marginal_s",
    "day_marginal_vs_full",
    "validate_day_s",
    "daily_run_s",
    "incremental_vs_full",
    "airflow_vs_cli",
    "dag_parse_max_s",
    "peak_rss_mb_max",
    "targets",
)
# --orchestration-only: the `exops run` pairs on a warehouse a whole run left
ORCHESTRATION_REQUIRED_KEYS = ("scale", "airflow_vs_cli", "airflow_vs_cli_noop", "targets")
# the history check runs only the steps that lead to an incremental day
HISTORY_REQUIRED_KEYS = ("scale", "runs", "history_incremental_ratio", "targets")


@dataclass(frozen=True)
class Target:
    key: str
    comparison: str
    threshold: float

    def describe(self) -> str:
        return f"{self.comparison} {self.threshold:g}"


# The issues' targets per scale (a --users/--days variant is held to its base scale's).
# Issue 10's replace the earlier ratio targets (ingest_vs_copy, incremental_vs_full), which
# are still reported; the two absolute ones carry over; issue 14 keeps airflow_vs_cli <= 1.3
# at large (a day's work through Airflow against the same in-process, bench/README.md).
_CARRIED_OVER = (Target("dag_parse_max_s", "<", 0.3), Target("peak_rss_mb_max", "<", 2048))
TARGETS: dict[str, tuple[Target, ...]] = {
    "large": (
        Target("full_build_s", "<=", 600),
        Target("incremental_day_s", "<=", 60),
        Target("day_marginal_vs_full", "<=", 0.05),
        Target("validate_day_s", "<=", 30),
        Target("daily_run_s", "<=", 150),
        Target("full_build_vs_floor", "<=", 8),
        Target("airflow_vs_cli", "<=", 1.3),
        *_CARRIED_OVER,
    ),
    "small": (
        Target("noop_build_s", "<=", 10),
        Target("day_marginal_vs_full", "<=", 0.10),
        Target("validate_day_s", "<=", 10),
        *_CARRIED_OVER,
    ),
    "history": (Target("history_incremental_ratio", "<=", 1.2),),
}


def base_scale(scale_name: str) -> str:
    """``large`` for ``large`` and ``large_200000x730``; ``history`` for ``history_60000x180``."""
    return scale_name.split("_", 1)[0]


def derived_keys(timings: dict) -> dict:
    """The figures computed from step timings: what a new day costs beyond a build's floor.

    ``timings`` holds ``full_build_s``, ``incremental_day_s``, ``noop_build_s``,
    ``empty_window_build_s``, ``same_window_build_s`` and ``floor_s`` (any may be missing;
    then what depends on it is None).
    """
    full = timings.get("full_build_s")
    day = timings.get("incremental_day_s")
    noop = timings.get("noop_build_s")
    marginal = day - noop if day is not None and noop is not None else None
    same = timings.get("same_window_build_s")
    data = day - same if day is not None and same is not None else None
    empty = timings.get("empty_window_build_s")
    rows = day - empty if day is not None and empty is not None else None
    return {
        "day_marginal_s": marginal,
        "day_marginal_vs_full": ratio(marginal, full),
        # the day's window built again, one small partition re-delivered (its rows built a
        # second time): what a first build of the day's rows costs beyond a second
        "day_data_s": data,
        "day_data_vs_full": ratio(data, full),
        # dbt run on an empty window (no rows for any node): what the day's rows add to it
        "day_rows_s": rows,
        "day_rows_vs_full": ratio(rows, full),
        "full_build_vs_floor": ratio(full, timings.get("floor_s")),
        "incremental_vs_full": ratio(day, full),
    }


def history_ratio(short: dict, long: dict) -> float | None:
    """``incremental_day_s`` with twice the history over that with the shorter history."""
    return ratio(long.get("incremental_day_s"), short.get("incremental_day_s"))


def rate(rows: int, seconds: float) -> float | None:
    """Rows per second, or None when nothing was timed."""
    return rows / seconds if seconds > 0 else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def spread(values: Iterable[float | None]) -> float | None:
    """(max - min) / median: how noisy the repetitions were."""
    present = [v for v in values if v is not None]
    if len(present) < 2:
        return None
    mid = statistics.median(present)
    return (max(present) - min(present)) / mid if mid else None


def target_met(value: float | None, comparison: str, threshold: float) -> bool | None:
    if value is None:
        return None
    return {
        ">=": value >= threshold,
        "<=": value <= threshold,
        "<": value < threshold,
    }[comparison]


def target_checks(results: dict, scale_name: str) -> list[dict]:
    """Each target of the scale, the figure measured and whether it was met (None: no figure)."""
    return [
        {
            "key": t.key,
            "value": results.get(t.key),
            "target": t.describe(),
            "met": target_met(results.get(t.key), t.comparison, t.threshold),
        }
        for t in TARGETS.get(base_scale(scale_name), ())
    ]


def missing_keys(results: dict, required: tuple[str, ...] = REQUIRED_KEYS) -> list[str]:
    return [k for k in required if k not in results]


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(rows: list[tuple[str, object, str]]) -> str:
    """Aligned ``name  value  note`` lines."""
    width = max(len(name) for name, _, _ in rows)
    values = [_fmt(v) for _, v, _ in rows]
    vwidth = max(len(v) for v in values)
    return "\n".join(
        f"{name:<{width}}  {value:>{vwidth}}  {note}".rstrip()
        for (name, _, note), value in zip(rows, values, strict=True)
    )


def targets_table(checks: list[dict]) -> str:
    """``key  value  target  met`` with a header; ``-`` where nothing was measured."""
    rows = [("key", "value", "target", "met")] + [
        (
            c["key"],
            _fmt(c["value"]),
            c["target"],
            "-" if c["met"] is None else "met" if c["met"] else "MISSED",
        )
        for c in checks
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        f"{k:<{widths[0]}}  {v:>{widths[1]}}  {t:<{widths[2]}}  {m}" for k, v, t, m in rows
    )
