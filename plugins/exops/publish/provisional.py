"""Provisional marts: a day whose inputs are stale or anomalous is published, but flagged.

The quality gate judges every source entity's delivery (:mod:`exops.quality.source_health`,
``audit.source_health``) with the marts that depend on it from dbt's lineage. For a day
where a finding ``holds``, those marts are provisional:

- :func:`hold` keeps their new KPI alerts of that day out of ``publish.kpi_alerts`` and in
  ``publish.held_alerts`` (this module's table) instead: nothing is sent;
- :func:`release_held` (every publish run, before new alerts are stored) re-evaluates each
  held alert once its day is no longer provisional: when the rule still fires, the alert is
  stored with a "delayed" note and goes out through the usual outbox (once); otherwise it is
  dropped, never sent;
- :func:`banner` is the report's banner naming the sources and the affected sections;
- :func:`tell_data_engineers` emails data engineers once per day with a problem.

A finding whose marts are unknown (no dbt manifest when it was judged) makes every mart
provisional: holding too much is safer than paging ops about a half-delivered day.

The marts come from dbt's model-level lineage, which makes nearly every exchange mart depend
on the CRM users (the rollup carries fees counted from each registration). An alert is held
only when the source also feeds **its** numbers: the columns of its metric, of its segments
and what decides the mart's rows, followed down the compiled SQL
(:mod:`exops.transform.lineage`); so a late CRM delivery holds the funnel's alerts, not the
exchange volume's. Where that lineage cannot be followed, the model-level marts decide.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date

import psycopg
from psycopg.rows import dict_row

from exops import warehouse
from exops.marts import MARTS
from exops.marts import mart as mart_named
from exops.publish import alerts as alert_rules
from exops.publish import digest
from exops.publish.rules import Rule
from exops.templating import render
from exops.transform.lineage import ColumnLineage
from exops.transform.lineage import load as load_lineage

log = logging.getLogger(__name__)


# the daily report's sections and the marts each reads (exops.publish.report.build)
REPORT_SECTIONS: dict[str, tuple[str, ...]] = {
    "headline_kpis": ("exchange_daily_kpis",),
    "products_by_stage": ("product_daily_kpis",),
    "product_stage_changes": ("product_stage_kpis",),
    "tier_mix": ("user_tier_daily",),
    "tier_movements": ("user_tier_transitions",),
    "funnel": ("acquisition_funnel",),
    "retention": ("retention_cohorts",),
    "campaigns": ("campaign_performance",),
    "feedback": ("feedback_daily",),
    "nps": ("nps_weekly",),
    "risk_alerts": ("risk_alerts",),
    "charts": ("exchange_daily_kpis", "user_tier_daily"),
}

HELD_DDL = (
    """
    create table if not exists publish.held_alerts (
      rule text not null,
      segment text not null,
      day date not null,
      mart text not null,
      sources text not null,
      message text not null,
      held_as_of date not null,
      held_at timestamptz not null default now(),
      resolved_at timestamptz,
      resolution text check (resolution in ('released', 'dropped')),
      primary key (rule, segment, day)
    )
    """,
)


def ensure_held_table(conn: psycopg.Connection) -> None:
    """``publish.held_alerts`` (idempotent; created by ``exops warehouse init``)."""
    if conn.execute("select to_regclass('publish.held_alerts')").fetchone()[0] is None:
        warehouse.ensure_tables(conn, "publish", HELD_DDL)


@dataclass(frozen=True)
class SourceProblem:
    source: str
    entity: str
    check: str
    status: str
    detail: str
    holds: bool
    marts: tuple[str, ...]


def problems(conn: psycopg.Connection, day: date) -> list[SourceProblem]:
    """The stored source-health findings of ``day`` that are not ok (none before the gate
    ever judged a day)."""
    if conn.execute("select to_regclass('audit.source_health')").fetchone()[0] is None:
        return []
    every_mart = tuple(m.name for m in MARTS)
    rows = conn.execute(
        "select source, entity, check_name, status, detail, holds, affected_marts"
        " from audit.source_health where day = %s and status <> 'ok'"
        " order by status desc, source, entity, check_name",
        (day,),
    ).fetchall()
    return [
        SourceProblem(s, e, c, st, d, h, every_mart if marts is None else tuple(marts))
        for s, e, c, st, d, h, marts in rows
    ]


def provisional_marts(conn: psycopg.Connection, day: date) -> dict[str, list[str]]:
    """{mart: ["crm/users", ...]}: the marts provisional on ``day`` and the source entities
    that make them so."""
    out: dict[str, list[str]] = {}
    for p in problems(conn, day):
        if not p.holds:
            continue
        for mart in p.marts:
            label = f"{p.source}/{p.entity}"
            if label not in out.setdefault(mart, []):
                out[mart].append(label)
    return out


def _stored(conn: psycopg.Connection, a: alert_rules.Alert) -> bool:
    return (
        conn.execute(
            "select 1 from publish.kpi_alerts where rule = %s and segment = %s and day = %s",
            (a.rule, a.segment, a.day),
        ).fetchone()
        is not None
    )


def rule_sources(lineage: ColumnLineage | None, rule: Rule) -> frozenset[str] | None:
    """The source entities a rule's numbers depend on (its metric and min-sample metric, its
    segments, the mart's rows); None when the column lineage cannot tell."""
    if lineage is None:
        return None
    try:
        m = mart_named(rule.mart)
        metrics = [m.metric(rule.metric)]
        if rule.min_sample is not None:
            metrics.append(m.metric(rule.min_sample.metric))
    except KeyError:
        return None
    columns = (m.date_column, *rule.where, *rule.by)
    out: set[str] = set()
    for metric in metrics:
        found = lineage.metric_sources(rule.mart, metric.sql, columns)
        if found is None:
            return None
        out |= found
    return frozenset(out)


class _Holding:
    """Per rule and day, the stale or anomalous sources that make the rule's mart provisional
    and feed the rule's numbers (all of the mart's when the column lineage cannot tell). The
    lineage is loaded once, when first needed."""

    def __init__(self, conn: psycopg.Connection, rules: list[Rule]) -> None:
        self.conn = conn
        self.rules = {r.name: r for r in rules}
        self.days: dict[date, dict[str, list[str]]] = {}
        self.depends: dict[str, frozenset[str] | None] = {}
        self.lineage: ColumnLineage | None = None
        self.loaded = False

    def sources(self, rule_name: str, mart: str, day: date) -> list[str]:
        if day not in self.days:
            self.days[day] = provisional_marts(self.conn, day)
        sources = self.days[day].get(mart, [])
        rule = self.rules.get(rule_name)
        if not sources or rule is None:
            return sources
        if rule_name not in self.depends:
            if not self.loaded:
                self.lineage, self.loaded = load_lineage(), True
            self.depends[rule_name] = rule_sources(self.lineage, rule)
        depends = self.depends[rule_name]
        return sources if depends is None else [s for s in sources if s in depends]


def hold(
    conn: psycopg.Connection, found: list[alert_rules.Alert], rules: list[Rule], as_of: date
) -> tuple[list[alert_rules.Alert], list[alert_rules.Alert]]:
    """(to store and send, held): alerts of marts provisional on their day, never stored
    before, whose numbers depend on the sources that make the mart provisional
    (:func:`rule_sources`), are recorded in ``publish.held_alerts`` instead of being sent."""
    ensure_held_table(conn)
    mart_of = {r.name: r.mart for r in rules}
    holding = _Holding(conn, rules)
    kept, held = [], []
    for a in found:
        sources = holding.sources(a.rule, mart_of.get(a.rule, ""), a.day)
        if not sources or _stored(conn, a):
            kept.append(a)
            continue
        held.append(a)
        with conn.transaction():
            conn.execute(
                "insert into publish.held_alerts (rule, segment, day, mart, sources, message,"
                " held_as_of) values (%s, %s, %s, %s, %s, %s, %s)"
                " on conflict (rule, segment, day) do update set sources = excluded.sources,"
                " message = excluded.message where publish.held_alerts.resolved_at is null",
                (a.rule, a.segment, a.day, mart_of[a.rule], ", ".join(sources), a.message, as_of),
            )
    if held:
        log.warning("%d alert(s) held: their marts are provisional", len(held))
    return kept, held


def release_held(conn: psycopg.Connection, rules: list[Rule], as_of: date) -> tuple[int, int]:
    """Resolve held alerts whose day is no longer provisional: (released, dropped).

    A released alert is stored with a note that it was delayed (and is then sent once, as
    every stored alert is); one whose rule no longer fires (or no longer exists) is dropped.
    """
    ensure_held_table(conn)
    by_name = {r.name: r for r in rules}
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "select * from publish.held_alerts where resolved_at is null"
            " order by day, rule, segment"
        )
        .fetchall()
    )
    holding = _Holding(conn, rules)
    released = dropped = 0
    for row in rows:
        if holding.sources(row["rule"], row["mart"], row["day"]):
            continue
        rule = by_name.get(row["rule"])
        still = None
        if rule is not None and rule.mart == row["mart"]:
            still = next(
                (
                    a
                    for a in alert_rules.evaluate(conn, [rule], row["day"]).alerts
                    if a.day == row["day"] and a.segment == row["segment"]
                ),
                None,
            )
        if still is not None:
            delayed = replace(
                still,
                message=(
                    f"Delayed: held since {row['held_at']:%Y-%m-%d %H:%M} UTC because "
                    f"{row['sources']} was stale or anomalous for {row['day']}; the input is "
                    f"now complete and the alert still holds. {still.message}"
                ),
            )
            digest.store(conn, [delayed], as_of)
            released += 1
        else:
            dropped += 1
        with conn.transaction():
            conn.execute(
                "update publish.held_alerts set resolved_at = now(), resolution = %s"
                " where rule = %s and segment = %s and day = %s",
                (
                    "released" if still is not None else "dropped",
                    row["rule"],
                    row["segment"],
                    row["day"],
                ),
            )
    return released, dropped


@dataclass(frozen=True)
class Banner:
    html: str
    text: str
    sources: tuple[str, ...]
    sections: tuple[str, ...]


def affected_sections(marts: set[str]) -> list[str]:
    return [name for name, reads in REPORT_SECTIONS.items() if marts & set(reads)]


def banner(
    conn: psycopg.Connection, day: date, titles: dict[str, str] | None = None
) -> Banner | None:
    """The report's banner for ``day`` when some mart is provisional, else None; sections are
    shown by their ``titles`` (section name -> title) where given."""
    held = [p for p in problems(conn, day) if p.holds]
    if not held:
        return None
    marts = sorted({m for p in held for m in p.marts})
    titles = {"charts": "Charts", **(titles or {})}
    sections = [titles.get(name, name) for name in affected_sections(set(marts))]
    context = {"day": day, "sources": held, "marts": marts, "sections": sections}
    return Banner(
        html=render("_source_health_banner.html.j2", **context),
        text=render("_source_health_banner.txt.j2", **context),
        sources=tuple(sorted({f"{p.source}/{p.entity}" for p in held})),
        sections=tuple(sections),
    )


def tell_data_engineers(conn: psycopg.Connection, day: date) -> bool:
    """One email to data engineers per day with a source problem (at most once, through
    :func:`exops.notify.send_once`); True when this call sent it."""
    from exops import notify

    found = problems(conn, day)
    if not found:
        return False
    checked_at = conn.execute(
        "select max(checked_at) from audit.source_health where day = %s", (day,)
    ).fetchone()[0]
    marts = sorted({m for p in found if p.holds for m in p.marts})
    ensure_held_table(conn)
    held_alerts = conn.execute(
        "select count(*) from publish.held_alerts where day = %s", (day,)
    ).fetchone()[0]
    context = {
        "day": day,
        "checked_at": f"{checked_at:%Y-%m-%d %H:%M} UTC" if checked_at else "unknown",
        "problems": found,
        "marts": marts,
        "held": held_alerts,
    }
    names = sorted({f"{p.source}/{p.entity}" for p in found})
    worst = "error" if any(p.status == "error" for p in found) else "warn"
    subject = f"[exops source health] {day}: {worst}: {', '.join(names)[:200]}"
    return notify.send_once(
        conn,
        f"source_health|{day}",
        "source_health",
        subject,
        render("source_health_email.txt.j2", **context),
        html=render("source_health_email.html.j2", **context),
    )
