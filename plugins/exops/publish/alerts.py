"""Evaluating KPI alert rules on the marts: the first step of publishing alerts.

evaluate (this module) -> list of Alert -> store (:mod:`exops.publish.digest`, with what
moved and what is at stake) -> hold what must wait -> one digest per audience -> deliver
through the at-most-once outbox. The same evaluation replays history in
:mod:`exops.publish.backtest`, sending nothing.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

import psycopg

from exops.marts import Mart, mart
from exops.publish import formatting as fmt
from exops.publish.baseline import (
    Incident,
    comparison_days,
    incident_days,
    load_incidents,
    robust_baseline,
)
from exops.publish.rules import Anomaly, Change, Rule, Threshold

log = logging.getLogger(__name__)

_PERIOD_DAYS = {"day": 1, "week": 7, "month": 31, "none": 1}
_STAGE_EVENTS = {
    "launch_preparation": "announced",
    "cold_start": "listed",
    "iteration": "new iteration released",
    "delisting": "delisting announced",
    "delisted": "delisted",
}


@dataclass(frozen=True)
class Alert:
    rule: str
    segment: str  # "alert_type=self_trade" or "all"
    day: date
    value: float | None
    baseline: float | None
    message: str
    severity: str
    recipients: tuple[str, ...]
    mart: str = ""
    metric: str = ""
    # the rule's where and this series' segment: what identifies the number
    scope: tuple[tuple[str, object], ...] = ()
    relative: float | None = None  # (value - baseline) / |baseline|
    deliver: str = "digest"
    baseline_days: tuple[date, ...] = ()  # the days the baseline was made of

    @property
    def scope_dict(self) -> dict[str, object]:
        return dict(self.scope)


@dataclass(frozen=True)
class NotEvaluated:
    """A rule's segment and day left out because its sample was too small."""

    rule: str
    segment: str
    day: date
    sample_metric: str
    sample: float | None
    at_least: float


@dataclass
class Evaluation:
    alerts: list[Alert] = field(default_factory=list)
    not_evaluated: list[NotEvaluated] = field(default_factory=list)


@dataclass(frozen=True)
class Verdict:
    baseline: float | None
    why: str
    relative: float | None
    baseline_days: tuple[date, ...] = ()


def _previous(day: date, period: str, compared_to: str) -> date:
    if compared_to == "week":
        return day - timedelta(days=7)
    if period == "month":
        return (day.replace(day=1) - timedelta(days=1)).replace(day=1)
    return day - timedelta(days=_PERIOD_DAYS[period])


Series = dict[tuple, dict[date, tuple[float | None, float | None]]]


def history_days(rule: Rule, m: Mart) -> int:
    """How many days before the first evaluated day the rule's baseline may reach."""
    cond = rule.condition
    if isinstance(cond, Change):
        # a known incident on the compared day moves the comparison a period further back
        return (8 if cond.compared_to == "week" else _PERIOD_DAYS[m.period] + 1) * 4
    if isinstance(cond, Anomaly):
        step = 7 if cond.seasonality == "weekday" else _PERIOD_DAYS[m.period]
        return step * (cond.window + 1) + 31  # room for the incident days left out
    return 0


def _series(conn: psycopg.Connection, rule: Rule, m: Mart, first: date, last: date) -> Series:
    """{segment values: {date: (value, sample)}} for the rule's metric (and its sample
    metric) from ``first`` minus the baseline's history to ``last``, whitelisted SQL only."""
    start = first - timedelta(days=history_days(rule, m))
    by = [f"{c}::text" for c in rule.by]
    filters = [f"{c} = %s" for c in rule.where]
    sample = (
        f"({m.metric(rule.min_sample.metric).sql})::float8"
        if rule.min_sample is not None
        else "null::float8"
    )
    sql = (
        f"select {m.date_column} as day{''.join(', ' + b for b in by)}, "
        f"({m.metric(rule.metric).sql})::float8 as value, {sample} as sample "
        f"from {m.qualified} where {m.date_column} between %s and %s"
        + "".join(f" and {f}" for f in filters)
        + f" group by {', '.join(str(i + 1) for i in range(len(by) + 1))}"
        + " order by 1"
    )
    out: Series = defaultdict(dict)
    for row in conn.execute(sql, [start, last, *rule.where.values()]):
        out[tuple(row[1:-2])][row[0]] = (row[-2], row[-1])
    return out


def _big_enough(rule: Rule, value: float, baseline: float | None) -> bool:
    return baseline is None or abs(value - baseline) >= rule.min_abs_change


def fires(
    rule: Rule,
    m: Mart,
    points: dict[date, float | None],
    day: date,
    excluded: set[date] = frozenset(),
) -> Verdict | None:
    """The verdict when the rule fires on ``day``, else None; ``excluded``: known incidents,
    never part of a baseline."""
    value = points.get(day)
    if value is None:
        return None
    cond = rule.condition
    if isinstance(cond, Threshold):
        bound = cond.above if cond.above is not None else cond.below
        if cond.above is not None and value > cond.above and _big_enough(rule, value, bound):
            return Verdict(cond.above, f"above the threshold {fmt.number(cond.above)}", None)
        if cond.below is not None and value < cond.below and _big_enough(rule, value, bound):
            return Verdict(cond.below, f"below the threshold {fmt.number(cond.below)}", None)
        return None
    if isinstance(cond, Change):
        prev_day = _previous(day, m.period, cond.compared_to)
        for _ in range(3):
            if prev_day not in excluded:
                break
            prev_day = _previous(prev_day, m.period, cond.compared_to)
        baseline = points.get(prev_day)
        change = fmt.percent_change(value, baseline)
        if change is None:
            return None
        hit = {
            "drop": change <= -cond.percent,
            "rise": change >= cond.percent,
            "any": abs(change) >= cond.percent,
        }[cond.direction]
        if not hit or not _big_enough(rule, value, baseline):
            return None
        return Verdict(
            baseline, f"{fmt.signed_percent(change)} vs {prev_day}", change / 100, (prev_day,)
        )
    assert isinstance(cond, Anomaly)
    known = [d for d in points if points[d] is not None]
    days = comparison_days(known, day, cond.window, cond.seasonality == "weekday", excluded)
    if len(days) < (cond.min_points or max(3, cond.window // 2)):
        return None
    base = robust_baseline([points[d] for d in days])
    if value == base.median:
        return None
    z = base.robust_z(value)
    median = base.median
    relative = (value - median) / abs(median) if median else math.copysign(math.inf, value)
    direction_ok = {"drop": z < 0, "rise": z > 0, "any": True}[cond.direction]
    if not direction_ok or abs(z) < cond.z or abs(relative) < cond.min_relative_change:
        return None
    if not _big_enough(rule, value, median):
        return None
    kind = "same-weekday " if cond.seasonality == "weekday" else ""
    z_text = "∞" if math.isinf(z) else f"{z:+.1f}"
    return Verdict(
        median,
        f"{fmt.signed_percent(relative * 100)} vs the median of the previous {len(days)} "
        f"{kind}points (robust z = {z_text})",
        relative,
        tuple(days),
    )


def _planned_events(conn: psycopg.Connection, day: date, segment: dict[str, object]) -> list[str]:
    """Campaign starts/ends and product listings/delistings on ``day`` or the day before."""
    line = segment.get("product_line")
    product = segment.get("product_id")
    events: list[str] = []
    rows = conn.execute(
        """
        select campaign_id, campaign_type, product_line, start_date, end_date
          from marts.campaign_performance
         where (start_date between %(d0)s and %(d1)s or end_date between %(d0)s and %(d1)s)
           and (%(line)s::text is null or product_line is null or product_line = %(line)s)
         order by campaign_id
        """,
        {"d0": day - timedelta(days=1), "d1": day, "line": line},
    ).fetchall()
    for campaign_id, ctype, pline, start, end in rows:
        what = "started" if day - timedelta(days=1) <= start <= day else "ended"
        when = start if what == "started" else end
        scope = pline or "all product lines"
        events.append(f"campaign {campaign_id} ({ctype}, {scope}) {what} on {when}")
    rows = conn.execute(
        """
        with staged as (
            select product_id, product_line, activity_date, lifecycle_stage,
                   lag(lifecycle_stage) over (partition by product_id order by activity_date)
                       as previous_stage
              from marts.product_daily_kpis
             where activity_date between %(d0)s - 7 and %(d1)s
        )
        select product_id, lifecycle_stage, activity_date
          from staged
         where activity_date between %(d0)s and %(d1)s
           and lifecycle_stage is distinct from previous_stage
           and lifecycle_stage <> 'daily_operations'
           and (%(line)s::text is null or product_line = %(line)s)
           and (%(product)s::text is null or product_id = %(product)s)
         order by activity_date, product_id
        """,
        {"d0": day - timedelta(days=1), "d1": day, "line": line, "product": product},
    ).fetchall()
    for product_id, stage, on in rows:
        events.append(f"product {product_id} {_STAGE_EVENTS.get(stage, stage)} on {on}")
    return events


def _segment_text(by: list[str], values: tuple) -> str:
    if not by:
        return "all"
    return ", ".join(f"{c}={v}" for c, v in zip(by, values, strict=True))


def evaluate_rule(
    conn: psycopg.Connection,
    rule: Rule,
    first: date,
    last: date,
    incidents: list[Incident] = (),
    with_events: bool = True,
) -> Evaluation:
    """What ``rule`` finds on the days from ``first`` to ``last``: alerts, and the segments
    and days whose sample was too small to evaluate."""
    out = Evaluation()
    m = mart(rule.mart)
    metric = m.metric(rule.metric)
    excluded = incident_days(list(incidents), m.name)
    # the cooldown looks at the data alone (did the condition hold on the cooldown_days
    # before?), so that a live run and a backtest agree whatever their first day
    replay_from = first - timedelta(days=rule.cooldown_days)
    for values, series in sorted(_series(conn, rule, m, replay_from, last).items()):
        points = {d: v for d, (v, _) in series.items()}
        segment_text = _segment_text(rule.by, values)
        last_held: date | None = None
        for day in sorted(d for d in points if replay_from <= d <= last):
            if rule.min_sample is not None:
                sample = series[day][1]
                if sample is None or sample < rule.min_sample.at_least:
                    if day < first:
                        continue
                    out.not_evaluated.append(
                        NotEvaluated(
                            rule.name,
                            segment_text,
                            day,
                            rule.min_sample.metric,
                            sample,
                            rule.min_sample.at_least,
                        )
                    )
                    continue
            verdict = fires(rule, m, points, day, excluded)
            if verdict is None:
                continue
            held_before, last_held = last_held, day
            if held_before is not None and (day - held_before).days <= rule.cooldown_days:
                continue  # the condition already held within the cooldown: not news
            if day < first:
                continue
            segment = dict(zip(rule.by, values, strict=True))
            where = ", ".join(f"{k}={v}" for k, v in rule.where.items())
            scope = ", ".join(x for x in (where, segment_text) if x)
            text = (
                f"{rule.metric} of {rule.mart} ({scope}) on {day}: "
                f"{fmt.number(points[day], metric.user_count)}, {verdict.why}."
            )
            if with_events:
                events = _planned_events(conn, day, {**rule.where, **segment})
                if events:
                    text += " Coincides with planned events: " + "; ".join(events) + "."
            out.alerts.append(
                Alert(
                    rule=rule.name,
                    segment=segment_text,
                    day=day,
                    value=points[day],
                    baseline=verdict.baseline,
                    message=text,
                    severity=rule.severity,
                    recipients=tuple(rule.recipients),
                    mart=rule.mart,
                    metric=rule.metric,
                    scope=tuple({**rule.where, **segment}.items()),
                    relative=verdict.relative,
                    deliver=rule.deliver,
                    baseline_days=verdict.baseline_days,
                )
            )
    return out


def evaluate(
    conn: psycopg.Connection,
    rules: list[Rule],
    as_of: date,
    incidents: list[Incident] | None = None,
) -> Evaluation:
    """Every alert the rules raise for days in [as_of - lookback_days, as_of]."""
    incidents = load_incidents() if incidents is None else incidents
    out = Evaluation()
    for rule in rules:
        found = evaluate_rule(
            conn, rule, as_of - timedelta(days=rule.lookback_days), as_of, incidents
        )
        out.alerts.extend(found.alerts)
        out.not_evaluated.extend(found.not_evaluated)
    return out


def still_holds(
    conn: psycopg.Connection,
    rule: Rule,
    segment: str,
    day: date,
    incidents: list[Incident] = (),
) -> bool:
    """Whether ``rule`` still fires for ``segment`` on ``day`` on the marts as they are now
    (for an alert held until its inputs are complete, or one whose number was restated)."""
    found = evaluate_rule(conn, rule, day, day, incidents, with_events=False)
    return any(a.segment == segment for a in found.alerts)
