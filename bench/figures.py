"""Pure helpers of the benchmark: ratios, medians, the result record and its table."""

from __future__ import annotations

import statistics
from collections.abc import Iterable

REQUIRED_KEYS = (
    "scale",
    "trades",
    "ingest_rows_per_s",
    "copy_rows_per_s",
    "ingest_vs_copy",
    "to_sql_rows_per_s",
    "full_build_s",
    "incremental_day_s",
    "incremental_vs_full",
    "airflow_vs_cli",
    "dag_parse_max_s",
    "peak_rss_mb_max",
)

# (key, comparison, threshold): the targets at scale `large`
TARGETS = (
    ("ingest_vs_copy", ">=", 0.5),
    ("incremental_vs_full", "<=", 0.10),
    ("airflow_vs_cli", "<=", 1.3),
    ("dag_parse_max_s", "<", 0.3),
    ("peak_rss_mb_max", "<", 2048),
)


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


def verdicts(results: dict) -> dict[str, bool | None]:
    return {key: target_met(results.get(key), cmp, t) for key, cmp, t in TARGETS}


def missing_keys(results: dict) -> list[str]:
    return [k for k in REQUIRED_KEYS if k not in results]


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
