"""What moved: the few segments that account for most of an alert's change, and what is
at stake in USD.

An alert on a total (exchange volume, traders, tickets) is broken down along the segments
the marts of shared/spec/KPIS.md offer for that number: products and product lines
(``product_daily_kpis``), tiers (``user_tier_daily``), acquisition channels
(``acquisition_funnel``), ticket categories and channels (``feedback_daily``). Each
segment's "before" is its own baseline over the same days as the alert's (the median of the
same comparison days), its "after" its value on the alert's day; segments are ranked by how
much of the total change they carry, in the direction of the change, and the few that make
up most of it (80%, at most three per breakdown) are kept.

What is at stake: the metric's own gap to its baseline when it is money, the volume missing
against the same baseline days when it drives volume (trades, traders).

Only additive metrics (sums) are broken down: a ratio's change is not the sum of its
segments' changes. Small user counts stay suppressed where they are shown.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from datetime import date

import psycopg

from exops.marts import MART_BY_NAME, Mart

SHARE_OF_CHANGE = 0.8  # keep segments until they carry this much of the change
MAX_SEGMENTS = 3  # per breakdown

# (mart of the alert, metric) -> breakdowns: (mart, metric there, segment column)
_TOTAL_BREAKDOWNS: dict[tuple[str, str], tuple[tuple[str, str, str], ...]] = {}
for _metric in ("volume_usd", "fees_usd", "trade_count", "traders"):
    _TOTAL_BREAKDOWNS[("exchange_daily_kpis", _metric)] = (
        ("product_daily_kpis", _metric, "product_id"),
        ("product_daily_kpis", _metric, "product_line"),
    ) + (
        (("user_tier_daily", _metric, "tier"),)
        if _metric in ("volume_usd", "fees_usd")
        else (("user_tier_daily", "active_users", "tier"),)
        if _metric == "traders"
        else ()
    )
_TOTAL_BREAKDOWNS[("exchange_daily_kpis", "active_users")] = (
    ("user_tier_daily", "active_users", "tier"),
)
_TOTAL_BREAKDOWNS[("exchange_daily_kpis", "registrations")] = (
    ("acquisition_funnel", "registered_users", "acquisition_channel"),
)
_TOTAL_BREAKDOWNS[("exchange_daily_kpis", "new_traders")] = (
    ("product_daily_kpis", "new_traders", "product_line"),
)
# marts that are broken down along their own segments, most telling first
_OWN_SEGMENTS: dict[str, tuple[str, ...]] = {
    "product_daily_kpis": ("product_id", "product_line"),
    "user_tier_daily": ("tier",),
    "feedback_daily": ("category", "channel"),
    "acquisition_funnel": ("acquisition_channel",),
    "risk_alerts": ("alert_type",),
}
# marts with volume: an alert on their trades or traders puts volume at stake
_VOLUME_MARTS = ("exchange_daily_kpis", "product_daily_kpis", "user_tier_daily")
_VOLUME_DRIVERS = ("trade_count", "traders", "active_users", "new_traders")


@dataclass(frozen=True)
class Mover:
    dimension: str  # product_id, tier, ...
    segment: str  # BTC-USDT, vip, ...
    before: float  # the segment's baseline
    after: float  # its value on the alert's day
    change: float
    share: float | None  # of the total change (0.9 = 90%)
    user_count: bool = False


def is_additive(m: Mart, metric: str) -> bool:
    sql = m.metric(metric).sql
    return sql.startswith("sum(") and sql.count("sum(") == 1 and "/" not in sql


def breakdowns(mart_name: str, metric: str, scope: dict[str, object]) -> list[tuple[str, str, str]]:
    """The (mart, metric, segment column) breakdowns of an alert's number."""
    m = MART_BY_NAME[mart_name]
    if not is_additive(m, metric):
        return []
    if (mart_name, metric) in _TOTAL_BREAKDOWNS:
        return list(_TOTAL_BREAKDOWNS[(mart_name, metric)])
    return [
        (mart_name, metric, column)
        for column in _OWN_SEGMENTS.get(mart_name, ())
        if column not in scope and column in m.segments
    ]


def _values(
    conn: psycopg.Connection,
    m: Mart,
    metric: str,
    column: str | None,
    scope: dict[str, object],
    days: list[date],
) -> dict[str, dict[date, float]]:
    """{segment: {day: value}} of ``metric`` on ``days``, under the scope's filters that the
    mart has (whitelisted columns only)."""
    filters = {k: v for k, v in scope.items() if k in m.segments and k != column}
    seg = f"{column}::text" if column else "'all'"
    sql = (
        f"select {seg}, {m.date_column}, ({m.metric(metric).sql})::float8 from {m.qualified}"
        f" where {m.date_column} = any(%s)"
        + "".join(f" and {k} = %s" for k in filters)
        + " group by 1, 2"
    )
    out: dict[str, dict[date, float]] = {}
    for segment, day, value in conn.execute(sql, [days, *filters.values()]):
        out.setdefault(segment, {})[day] = value or 0.0
    return out


def _before_after(per_day: dict[date, float], day: date, baseline_days: list[date]):
    before = statistics.median([per_day.get(d, 0.0) for d in baseline_days])
    return before, per_day.get(day, 0.0)


def movers(
    conn: psycopg.Connection,
    mart_name: str,
    metric: str,
    scope: dict[str, object],
    day: date,
    baseline_days: list[date],
) -> list[Mover]:
    """The segments that carry most of the change of ``metric`` on ``day`` against the
    median of ``baseline_days``, per breakdown."""
    if not baseline_days:
        return []
    out: list[Mover] = []
    days = [day, *baseline_days]
    for bd_mart, bd_metric, column in breakdowns(mart_name, metric, scope):
        m = MART_BY_NAME[bd_mart]
        rows = []
        for segment, per_day in _values(conn, m, bd_metric, column, scope, days).items():
            before, after = _before_after(per_day, day, baseline_days)
            rows.append((segment, before, after, after - before))
        out.extend(rank(column, rows, m.metric(bd_metric).user_count))
    return out


def rank(
    dimension: str, rows: list[tuple[str, float, float, float]], user_count: bool = False
) -> list[Mover]:
    """The few of ``rows`` (segment, before, after, change) that carry most of the total
    change, in its direction: at most MAX_SEGMENTS, until SHARE_OF_CHANGE is reached."""
    total = sum(r[3] for r in rows)
    if total == 0:
        return []
    sign = 1 if total > 0 else -1
    same_way = sorted((r for r in rows if r[3] * sign > 0), key=lambda r: -abs(r[3]))
    carried = sum(abs(r[3]) for r in same_way)
    kept: list[Mover] = []
    running = 0.0
    for segment, before, after, change in same_way[:MAX_SEGMENTS]:
        kept.append(Mover(dimension, segment, before, after, change, change / total, user_count))
        running += abs(change)
        if running >= SHARE_OF_CHANGE * carried:
            break
    return kept


def stake_usd(
    conn: psycopg.Connection,
    mart_name: str,
    metric: str,
    scope: dict[str, object],
    day: date,
    baseline_days: list[date],
    value: float | None,
    baseline: float | None,
) -> tuple[float, str] | None:
    """(USD, of what) at stake: the metric's own gap to its baseline when it is money
    (volume, fees, deposits); the volume missing (or gained) against the same baseline days
    when the metric drives volume (trades, traders); None otherwise."""
    if metric.endswith("_usd"):
        if value is None or baseline is None:
            return None
        return abs(value - baseline), metric.removesuffix("_usd").replace("_", " ")
    if mart_name in _VOLUME_MARTS and metric in _VOLUME_DRIVERS and baseline_days:
        m = MART_BY_NAME[mart_name]
        per_day = _values(conn, m, "volume_usd", None, scope, [day, *baseline_days])
        before, after = _before_after(per_day.get("all", {}), day, baseline_days)
        return abs(after - before), "volume"
    return None


def as_json(items: list[Mover]) -> list[dict]:
    return [asdict(i) for i in items]
