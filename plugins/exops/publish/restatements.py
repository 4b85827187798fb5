"""Restatements: numbers that changed after they were published, and the alerts they undo.

Every number a report or an alert publishes is kept in ``publish.published_numbers`` with
its first value and when it was published (the first publication wins). Each report reads
them all again (those of the last ``WINDOW_DAYS`` days) and lists the ones that moved beyond
the tolerance since they were first published, old and new value: late records,
re-deliveries and unloads all show up the same way. A number is listed again only if it
moves again beyond the tolerance against the value last listed.

An alert that was sent and whose number was restated is evaluated again on the restated
data; if its rule no longer fires, it is marked retracted, and the next digest of each
audience that got it carries one "retracted" follow-up (:mod:`exops.publish.digest`).

Tolerance (defaults): 0.1% relative for amounts and ratios, one unit for counts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, timedelta

import psycopg
from psycopg.rows import dict_row

from exops.marts import MART_BY_NAME
from exops.publish import formatting as fmt
from exops.publish.alerts import still_holds
from exops.publish.baseline import Incident
from exops.publish.rules import Rule
from exops.publish.whatmoved import is_additive
from exops.settings import load_settings

WINDOW_DAYS = 45


def tolerances() -> tuple[float, int]:
    """(relative, for counts): ``EXOPS_RESTATEMENT_TOLERANCE``, ``..._COUNT_TOLERANCE``."""
    current = load_settings()
    return current.restatement_tolerance, current.restatement_count_tolerance


def tolerance_text() -> str:
    relative, count = tolerances()
    units = "one unit" if count == 1 else f"{count} units"
    return f"{relative * 100:g}% ({units} for counts)"


# the report's headline: exchange_daily_kpis on the as-of date, the day before, a week before
HEADLINE_METRICS = (
    "trade_count",
    "volume_usd",
    "fees_usd",
    "traders",
    "active_users",
    "wau",
    "mau",
    "stickiness",
    "registrations",
    "new_traders",
    "deposits_usd",
    "withdrawals_usd",
)


@dataclass(frozen=True)
class Number:
    mart: str
    metric: str
    scope: tuple[tuple[str, object], ...]
    day: date

    @property
    def key(self) -> str:
        text = json.dumps([self.mart, self.metric, sorted(self.scope), str(self.day)], default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def describe(self) -> str:
        scope = ", ".join(f"{k}={v}" for k, v in self.scope)
        return f"{self.metric} of {self.mart}" + (f" ({scope})" if scope else "")


def is_count(mart: str, metric: str) -> bool:
    m = MART_BY_NAME[mart]
    return is_additive(m, metric) and not metric.endswith("_usd")


def beyond_tolerance(mart: str, metric: str, old: float | None, new: float | None) -> bool:
    if old is None or new is None:
        return (old is None) != (new is None)
    relative, count = tolerances()
    if is_count(mart, metric):
        return abs(new - old) >= count
    if old == 0:
        return new != 0
    return abs(new - old) / abs(old) > relative


def current_value(conn: psycopg.Connection, n: Number) -> float | None:
    """The number as the marts say now (whitelisted mart, metric and segment columns)."""
    m = MART_BY_NAME[n.mart]
    scope = {k: v for k, v in n.scope if k in m.segments}
    sql = (
        f"select ({m.metric(n.metric).sql})::float8 from {m.qualified}"
        f" where {m.date_column} = %s" + "".join(f" and {k}::text = %s" for k in scope)
    )
    row = conn.execute(
        sql, [n.day, *(str(v).lower() if isinstance(v, bool) else str(v) for v in scope.values())]
    ).fetchone()
    return None if row is None else row[0]


def record(
    conn: psycopg.Connection, publication: str, as_of: date, numbers: list[tuple[Number, float]]
) -> int:
    """Keep ``numbers`` as published now by ``publication`` (report, alert); the first
    publication of a number wins. The count of numbers published for the first time."""
    new = 0
    with conn.transaction():
        for n, value in numbers:
            new += conn.execute(
                "insert into publish.published_numbers (number_key, mart, metric, scope, day,"
                " first_value, first_as_of, first_publication) values"
                " (%s, %s, %s, %s, %s, %s, %s, %s) on conflict (number_key) do nothing",
                (
                    n.key,
                    n.mart,
                    n.metric,
                    json.dumps(dict(n.scope), default=str),
                    n.day,
                    None if value is None else float(value),
                    as_of,
                    publication,
                ),
            ).rowcount
    return new


def report_numbers(conn: psycopg.Connection, as_of: date) -> list[tuple[Number, float]]:
    """The headline numbers the report of ``as_of`` publishes."""
    out = []
    for day in (as_of, as_of - timedelta(days=1), as_of - timedelta(days=7)):
        for metric in HEADLINE_METRICS:
            n = Number("exchange_daily_kpis", metric, (), day)
            value = current_value(conn, n)
            if value is not None:
                out.append((n, value))
    return out


def alert_numbers(rows: list[dict]) -> list[tuple[Number, float]]:
    """The numbers that stored alerts (rows of publish.kpi_alerts) published."""
    return [
        (Number(r["mart"], r["metric"], tuple((r["scope"] or {}).items()), r["day"]), r["value"])
        for r in rows
        if r.get("mart") and r["value"] is not None
    ]


@dataclass(frozen=True)
class Restatement:
    number: Number
    old: float | None  # as first published
    new: float | None
    first_published_at: object
    first_publication: str

    def view(self) -> dict:
        uc = MART_BY_NAME[self.number.mart].metric(self.number.metric).user_count
        change = fmt.percent_change(self.new, self.old)
        return {
            "day": str(self.number.day),
            "what": self.number.describe(),
            "published_at": f"{self.first_publication}, "
            + f"{self.first_published_at:%Y-%m-%d %H:%M} UTC",
            "old": fmt.number(self.old, uc),
            "new": fmt.number(self.new, uc),
            "change": fmt.signed_percent(change) if change is not None else "–",
        }


def detect(conn: psycopg.Connection, as_of: date) -> list[Restatement]:
    """The published numbers that changed beyond the tolerance, listed in the report of
    ``as_of`` (found now, or by an earlier run of the same as-of date)."""
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "select * from publish.published_numbers where day >= %s and first_as_of < %s"
            " and (listed_as_of is null or listed_as_of <= %s) order by day, mart, metric",
            (as_of - timedelta(days=WINDOW_DAYS), as_of, as_of),
        )
        .fetchall()
    )
    out = []
    for r in rows:
        n = Number(r["mart"], r["metric"], tuple((r["scope"] or {}).items()), r["day"])
        if r["listed_as_of"] == as_of:
            now = r["listed_value"]
        else:
            reference = r["first_value"] if r["listed_as_of"] is None else r["listed_value"]
            now = current_value(conn, n)
            if not beyond_tolerance(n.mart, n.metric, reference, now):
                continue
            with conn.transaction():
                conn.execute(
                    "update publish.published_numbers set listed_value = %s, listed_as_of = %s"
                    " where number_key = %s",
                    (now, as_of, r["number_key"]),
                )
        out.append(
            Restatement(n, r["first_value"], now, r["first_published_at"], r["first_publication"])
        )
    return out


def retract(
    conn: psycopg.Connection,
    rules: list[Rule],
    restated: list[Restatement],
    incidents: list[Incident],
    as_of: date,
) -> int:
    """Mark retracted each sent alert whose number was restated and whose rule no longer
    fires on the restated data. The count newly retracted."""
    by_key = {r.number.key: r for r in restated}
    rules_by_name = {r.name: r for r in rules}
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "select * from publish.kpi_alerts a where retracted_at is null and mart is not null"
            " and exists (select 1 from publish.alert_deliveries d where d.alert_id = a.alert_id)"
        )
        .fetchall()
    )
    retracted = 0
    for row in rows:
        n = Number(row["mart"], row["metric"], tuple((row["scope"] or {}).items()), row["day"])
        restatement = by_key.get(n.key)
        rule = rules_by_name.get(row["rule"])
        if restatement is None or rule is None:
            continue
        if still_holds(conn, rule, row["segment"], row["day"], incidents):
            continue
        uc = MART_BY_NAME[n.mart].metric(n.metric).user_count
        note = (
            f"{n.describe()} on {n.day} is now {fmt.number(restatement.new, uc)} (it was "
            f"{fmt.number(restatement.old, uc)} when alerted): the rule no longer fires."
        )
        with conn.transaction():
            retracted += conn.execute(
                "update publish.kpi_alerts set retracted_at = now(), retraction_note = %s,"
                " retracted_as_of = %s where alert_id = %s and retracted_at is null",
                (note, as_of, row["alert_id"]),
            ).rowcount
    return retracted
