"""Evaluating KPI alert rules on the marts, storing every alert, emailing each once."""

from __future__ import annotations

import logging
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from email.message import EmailMessage

import psycopg
from psycopg.rows import dict_row

from exops.mail import MailSettings, SendError, header_text
from exops.marts import Mart, mart
from exops.outbox import message_id, send_claimed
from exops.publish import formatting as fmt
from exops.publish.rules import Anomaly, Change, Rule, Threshold
from exops.templating import render

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


def _previous(day: date, period: str, compared_to: str) -> date:
    if compared_to == "week":
        return day - timedelta(days=7)
    if period == "month":
        return (day.replace(day=1) - timedelta(days=1)).replace(day=1)
    return day - timedelta(days=_PERIOD_DAYS[period])


def _series(
    conn: psycopg.Connection, rule: Rule, m: Mart, as_of: date
) -> dict[tuple, dict[date, float | None]]:
    """{segment values: {date: value}} for the rule's metric, read with whitelisted SQL."""
    cond = rule.condition
    history = 0
    if isinstance(cond, Change):
        history = 8 if cond.compared_to == "week" else _PERIOD_DAYS[m.period] + 1
    elif isinstance(cond, Anomaly):
        step = 7 if cond.seasonality == "weekday" else _PERIOD_DAYS[m.period]
        history = step * (cond.window + 1)
    start = as_of - timedelta(days=rule.lookback_days + history)
    by = [f"{c}::text" for c in rule.by]
    filters = [f"{c} = %s" for c in rule.where]
    sql = (
        f"select {m.date_column} as day{''.join(', ' + b for b in by)}, "
        f"({m.metric(rule.metric).sql})::float8 as value "
        f"from {m.qualified} where {m.date_column} between %s and %s"
        + "".join(f" and {f}" for f in filters)
        + f" group by {', '.join(str(i + 1) for i in range(len(by) + 1))}"
        + " order by 1"
    )
    out: dict[tuple, dict[date, float | None]] = defaultdict(dict)
    for row in conn.execute(sql, [start, as_of, *rule.where.values()]):
        out[tuple(row[1:-1])][row[0]] = row[-1]
    return out


def _fires(
    rule: Rule, m: Mart, points: dict[date, float | None], day: date
) -> tuple[float | None, str] | None:
    """(baseline, explanation) when the rule fires on ``day``, else None."""
    value = points.get(day)
    if value is None:
        return None
    cond = rule.condition
    if isinstance(cond, Threshold):
        if cond.above is not None and value > cond.above:
            return cond.above, f"above the threshold {fmt.number(cond.above)}"
        if cond.below is not None and value < cond.below:
            return cond.below, f"below the threshold {fmt.number(cond.below)}"
        return None
    if isinstance(cond, Change):
        prev_day = _previous(day, m.period, cond.compared_to)
        baseline = points.get(prev_day)
        change = fmt.percent_change(value, baseline)
        if change is None:
            return None
        hit = {
            "drop": change <= -cond.percent,
            "rise": change >= cond.percent,
            "any": abs(change) >= cond.percent,
        }[cond.direction]
        if not hit:
            return None
        return baseline, f"{fmt.signed_percent(change)} vs {prev_day}"
    assert isinstance(cond, Anomaly)
    earlier = sorted(d for d in points if d < day and points[d] is not None)
    if cond.seasonality == "weekday":
        earlier = [d for d in earlier if d.weekday() == day.weekday()]
    history = [points[d] for d in earlier[-cond.window :]]
    if len(history) < (cond.min_points or max(3, cond.window // 2)):
        return None
    mean = statistics.fmean(history)
    stdev = statistics.stdev(history)
    if stdev == 0:
        z = 0.0 if value == mean else math.copysign(math.inf, value - mean)
    else:
        z = (value - mean) / stdev
    relative = (value - mean) / abs(mean) if mean else math.copysign(math.inf, value - mean)
    if value == mean:
        return None
    direction_ok = {"drop": z < 0, "rise": z > 0, "any": True}[cond.direction]
    if not direction_ok or abs(z) < cond.z or abs(relative) < cond.min_relative_change:
        return None
    kind = "same-weekday " if cond.seasonality == "weekday" else ""
    z_text = "∞" if math.isinf(z) else f"{z:+.1f}"
    return mean, (
        f"{fmt.signed_percent(relative * 100)} vs the mean of the previous {len(history)} "
        f"{kind}points (z = {z_text})"
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


def evaluate(conn: psycopg.Connection, rules: list[Rule], as_of: date) -> list[Alert]:
    """Every alert the rules raise for days in [as_of - lookback_days, as_of]."""
    alerts: list[Alert] = []
    for rule in rules:
        m = mart(rule.mart)
        metric = m.metric(rule.metric)
        first_day = as_of - timedelta(days=rule.lookback_days)
        for values, points in sorted(_series(conn, rule, m, as_of).items()):
            for day in sorted(d for d in points if first_day <= d <= as_of):
                fired = _fires(rule, m, points, day)
                if fired is None:
                    continue
                baseline, why = fired
                segment = dict(zip(rule.by, values, strict=True))
                where = ", ".join(f"{k}={v}" for k, v in rule.where.items())
                scope = ", ".join(x for x in (where, _segment_text(rule.by, values)) if x)
                text = (
                    f"{rule.metric} of {rule.mart} ({scope}) on {day}: "
                    f"{fmt.number(points[day], metric.user_count)}, {why}."
                )
                events = _planned_events(conn, day, {**rule.where, **segment})
                if events:
                    text += " Coincides with planned events: " + "; ".join(events) + "."
                alerts.append(
                    Alert(
                        rule=rule.name,
                        segment=_segment_text(rule.by, values),
                        day=day,
                        value=points[day],
                        baseline=baseline,
                        message=text,
                        severity=rule.severity,
                        recipients=tuple(rule.recipients),
                    )
                )
    return alerts


def store(conn: psycopg.Connection, alerts: list[Alert], as_of: date) -> int:
    """Insert alerts not stored yet; the first stored version of an alert wins. New count."""
    new = 0
    with conn.transaction():
        for a in alerts:
            cur = conn.execute(
                """
                insert into publish.kpi_alerts (rule, segment, day, value, baseline, message,
                                              severity, recipients, as_of, message_id)
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                on conflict (rule, segment, day) do nothing
                """,
                (
                    a.rule,
                    a.segment,
                    a.day,
                    a.value,
                    a.baseline,
                    a.message,
                    a.severity,
                    ",".join(a.recipients),
                    as_of,
                    message_id("kpi_alert", a.rule, a.segment, a.day),
                ),
            )
            new += cur.rowcount
    return new


def _alert_message(row: dict, settings: MailSettings, descriptions: dict[str, str]) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.sender
    msg["To"] = ", ".join(settings.recipients(row["recipients"].split(",")))
    segment = "" if row["segment"] == "all" else f" [{row['segment']}]"
    msg["Subject"] = header_text(
        f"[exops KPI alert] {row['severity']}: {row['rule']}{segment} on {row['day']}"
    )
    msg["Message-ID"] = header_text(row["message_id"])
    context = {
        "description": descriptions.get(row["rule"], ""),
        "message": row["message"],
        "rule": row["rule"],
        "severity": row["severity"],
        "day": row["day"],
        "segment": row["segment"],
    }
    msg.set_content(render("kpi_alert.txt.j2", **context))
    msg.add_alternative(render("kpi_alert.html.j2", **context), subtype="html")
    return msg


@dataclass
class SendSummary:
    emailed: int = 0
    failed: int = 0
    unconfirmed: int = 0
    errors: list[str] | None = None
    # (alert, error) of alerts whose email could not be rendered: recorded, left unclaimed
    render_failures: list[tuple[str, str]] = field(default_factory=list)


def _render(row: dict, settings: MailSettings, descriptions: dict[str, str]) -> EmailMessage:
    """The alert's email, serialised once so that anything that cannot be sent fails here."""
    message = _alert_message(row, settings, descriptions)
    message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    return message


def send_pending(
    conn: psycopg.Connection, settings: MailSettings, rules: list[Rule]
) -> SendSummary:
    """Email every stored alert never claimed; each (rule, segment, day) at most once.

    Each alert is rendered on its own, before it is claimed: one that cannot be rendered is
    recorded (``render_error``), left unclaimed for the next run and listed in
    ``render_failures``, and the others are sent all the same."""
    descriptions = {r.name: r.description for r in rules}
    summary = SendSummary(errors=[])
    summary.unconfirmed = conn.execute(
        "select count(*) from publish.kpi_alerts"
        " where claimed_at is not null and emailed_at is null"
    ).fetchone()[0]
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute("select * from publish.kpi_alerts where claimed_at is null order by day, alert_id")
        .fetchall()
    )
    for row in rows:
        alert_id = row["alert_id"]
        # render before claiming: a rendering error must not leave a claimed, unsent alert
        try:
            message = _render(row, settings, descriptions)
        except Exception as exc:  # noqa: BLE001 - one bad alert must not stop the others
            what = f"alert {row['rule']} [{row['segment']}] on {row['day']}"
            error = f"{type(exc).__name__}: {exc}"
            log.error("%s could not be rendered: %s", what, error)
            with conn.transaction():
                conn.execute(
                    "update publish.kpi_alerts set render_error = %s, render_failed_at = now()"
                    " where alert_id = %s",
                    (error, alert_id),
                )
            summary.render_failures.append((what, error))
            continue
        with conn.transaction():
            claimed = conn.execute(
                "update publish.kpi_alerts set claimed_at = now()"
                " where alert_id = %s and claimed_at is null returning alert_id",
                (alert_id,),
            ).fetchone()
        if claimed is None:  # another run claimed it meanwhile
            continue
        try:
            send_claimed(
                conn,
                message,
                settings,
                mark_sent=lambda c, i=alert_id: c.execute(
                    "update publish.kpi_alerts set emailed_at = now(), render_error = null"
                    " where alert_id = %s",
                    (i,),
                ),
                release=lambda c, i=alert_id: c.execute(
                    "update publish.kpi_alerts set claimed_at = null where alert_id = %s", (i,)
                ),
            )
            summary.emailed += 1
        except SendError as exc:
            summary.failed += 1
            if not exc.not_sent:
                summary.unconfirmed += 1
            summary.errors.append(f"alert {row['rule']} {row['segment']} {row['day']}: {exc}")
            log.error("alert email failed: %s", exc)
    return summary
