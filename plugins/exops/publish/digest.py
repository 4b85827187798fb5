"""One email of alerts per audience per day: storing alerts, holding, grouping, ranking,
rendering and delivering them at most once.

The pipeline, each step a function so that others slot in (a hold on provisional inputs,
another delivery channel)::

    alerts.evaluate -> store (what moved, what is at stake) -> pending(held=...)
        -> units (one digest per audience; an immediate alert on its own)
        -> deliver (claim, send through the outbox, mark)

An alert is delivered to each of its audiences once (``publish.alert_deliveries``); each
email has a row in ``publish.digests``, its key in the at-most-once outbox
(:mod:`exops.outbox`). A digest also carries the one "retracted" follow-up of each alert the
audience was sent that no longer holds after restated data
(:mod:`exops.publish.restatements`).

Ranking: alerts whose number is money or drives money come first, by the USD at stake (the
metric's own gap to its baseline when it is money, the volume missing against the same
baseline when it drives volume: trades, traders); then by severity, then by the size of the
relative change.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage

import psycopg
from psycopg.rows import dict_row

from exops.mail import MailSettings, SendError, header_text
from exops.marts import MART_BY_NAME
from exops.outbox import message_id, send_claimed
from exops.publish import formatting as fmt
from exops.publish import whatmoved
from exops.publish.alerts import Alert
from exops.publish.rules import Rule
from exops.templating import render

log = logging.getLogger(__name__)

FOOTER = (
    "One email per audience and day from exops; each alert is sent once. "
    "Alerts are evaluated only on validated data."
)
_LOCK = "exops publish digests"

# a row of publish.kpi_alerts -> the reason it must wait (None: send it)
HoldCheck = Callable[[dict], str | None]


def no_hold(_row: dict) -> str | None:
    return None


def store(conn: psycopg.Connection, alerts: list[Alert], as_of: date) -> int:
    """Store the alerts not stored yet, with what moved and what is at stake (computed once,
    for new alerts only); the first stored version of an alert wins. The new count."""
    new = 0
    for a in alerts:
        exists = conn.execute(
            "select 1 from publish.kpi_alerts where rule = %s and segment = %s and day = %s",
            (a.rule, a.segment, a.day),
        ).fetchone()
        if exists:
            continue
        scope = a.scope_dict
        days = list(a.baseline_days)
        movers = whatmoved.movers(conn, a.mart, a.metric, scope, a.day, days) if a.mart else []
        stake = (
            whatmoved.stake_usd(conn, a.mart, a.metric, scope, a.day, days, a.value, a.baseline)
            if a.mart
            else None
        )
        with conn.transaction():
            cur = conn.execute(
                """
                insert into publish.kpi_alerts (rule, segment, day, value, baseline, message,
                    severity, recipients, as_of, message_id, mart, metric, scope, relative,
                    deliver, stake_usd, stake_what, movers)
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
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
                    a.mart,
                    a.metric,
                    json.dumps(scope, default=str),
                    a.relative,
                    a.deliver,
                    stake[0] if stake else None,
                    stake[1] if stake else None,
                    json.dumps(whatmoved.as_json(movers)),
                ),
            )
            new += cur.rowcount
    return new


def _user_count(row: dict) -> bool:
    m = MART_BY_NAME.get(row.get("mart") or "")
    try:
        return bool(m and m.metric(row["metric"]).user_count)
    except KeyError:
        return False


def _share(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.0f}%"


def item(row: dict, descriptions: dict[str, str]) -> dict:
    """An alert as the templates show it: every number already formatted."""
    uc = _user_count(row)
    value, baseline = row["value"], row["baseline"]
    change = fmt.percent_change(value, baseline)
    segment = "" if row["segment"] == "all" else f" [{row['segment']}]"
    stake = None
    if row.get("stake_usd") is not None:
        stake = f"{fmt.number(float(row['stake_usd']))} USD of {row['stake_what']}"
    movers = []
    for m in row.get("movers") or []:
        muc = m.get("user_count", False)
        movers.append(
            {
                "dimension": m["dimension"],
                "segment": m["segment"],
                "before": fmt.number(m["before"], muc),
                "after": fmt.number(m["after"], muc),
                "change": fmt.signed_percent(fmt.percent_change(m["after"], m["before"]))
                if m["before"]
                else ("+" if m["change"] > 0 else "") + fmt.number(m["change"]),
                "share": _share(m["share"]),
            }
        )
    return {
        "title": f"{row['rule']}{segment} on {row['day']}",
        "rule": row["rule"],
        "severity": row["severity"],
        "day": str(row["day"]),
        "message": row["message"],
        "description": descriptions.get(row["rule"], ""),
        "before_after": f"baseline {fmt.number(baseline, uc)} -> {fmt.number(value, uc)}"
        + (f" ({fmt.signed_percent(change)})" if change is not None else ""),
        "stake": stake,
        "movers": movers,
    }


def rank_key(row: dict) -> tuple:
    stake = row.get("stake_usd")
    relative = row.get("relative")
    if relative is None:
        relative = (fmt.percent_change(row["value"], row["baseline"]) or 0) / 100
    return (
        stake is None,
        -float(stake or 0),
        row["severity"] != "critical",
        -abs(relative),
        str(row["rule"]),
        str(row["segment"]),
    )


def ranked(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=rank_key)


def retraction(row: dict) -> dict:
    segment = "" if row["segment"] == "all" else f" [{row['segment']}]"
    return {"title": f"{row['rule']}{segment} on {row['day']}", "note": row["retraction_note"]}


@dataclass
class Unit:
    """One email: an audience's digest, or an immediate alert to all its audiences."""

    key: str
    kind: str  # digest | immediate
    audiences: list[str]
    as_of: date
    rows: list[dict] = field(default_factory=list)
    retracted: list[dict] = field(default_factory=list)

    @property
    def subject(self) -> str:
        if self.kind == "immediate":
            (row,) = self.rows
            segment = "" if row["segment"] == "all" else f" [{row['segment']}]"
            return header_text(
                f"[exops KPI alert] {row['severity']}: {row['rule']}{segment} on {row['day']}"
            )
        parts = [f"{len(self.rows)} alert{'s' if len(self.rows) != 1 else ''}"]
        if self.retracted:
            parts.append(f"{len(self.retracted)} retracted")
        top = ""
        if self.rows:
            first = self.rows[0]
            top = f": {first['rule']}" + (
                "" if first["segment"] == "all" else f" [{first['segment']}]"
            )
        return header_text(
            f"[exops] {self.audiences[0]} digest {self.as_of}: {', '.join(parts)}{top}"
        )


def _pending_rows(conn: psycopg.Connection) -> list[dict]:
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            """
            select a.*, array(select d.audience from publish.alert_deliveries d
                               where d.alert_id = a.alert_id and d.kind = 'alert') as sent_to,
                   array(select d.audience from publish.alert_deliveries d
                          where d.alert_id = a.alert_id and d.kind = 'retraction')
                       as retraction_sent_to
              from publish.kpi_alerts a
             order by a.day, a.alert_id
            """
        )
        .fetchall()
    )
    return rows


def units(
    conn: psycopg.Connection, as_of: date, held: HoldCheck = no_hold
) -> tuple[list[Unit], list[tuple[dict, str]]]:
    """The emails owed now, and the alerts held back with why. Reads, claims nothing."""
    per_audience: dict[str, Unit] = {}
    immediate: list[Unit] = []
    held_rows: list[tuple[dict, str]] = []
    for row in _pending_rows(conn):
        audiences = row["recipients"].split(",")
        if row["retracted_at"] is not None:
            for audience in audiences:
                if audience in row["sent_to"] and audience not in row["retraction_sent_to"]:
                    unit = per_audience.setdefault(audience, Unit("", "digest", [audience], as_of))
                    unit.retracted.append(row)
            continue
        owed = [a for a in audiences if a not in row["sent_to"]]
        if not owed or row["claimed_at"] is not None and not row["sent_to"]:
            continue  # claimed by a run that crashed: unconfirmed, never re-sent
        reason = held(row)
        if reason:
            held_rows.append((row, reason))
            continue
        if row["deliver"] == "immediate":
            immediate.append(Unit("", "immediate", owed, as_of, [row]))
            continue
        for audience in owed:
            per_audience.setdefault(audience, Unit("", "digest", [audience], as_of)).rows.append(
                row
            )
    out = []
    for audience in sorted(per_audience):
        unit = per_audience[audience]
        unit.rows = ranked(unit.rows)
        out.append(unit)
    return immediate + out, held_rows


def message(unit: Unit, settings: MailSettings, descriptions: dict[str, str]) -> EmailMessage:
    items = [item(r, descriptions) for r in unit.rows]
    retracted = [retraction(r) for r in unit.retracted]
    heading = unit.subject.removeprefix("[exops] ").removeprefix("[exops KPI alert] ")
    context = {
        "subject": unit.subject,
        "heading": heading,
        "items": items,
        "retracted": retracted,
        "footer": FOOTER,
    }
    msg = EmailMessage()
    msg["From"] = settings.sender
    msg["To"] = ", ".join(settings.recipients(unit.audiences))
    msg["Subject"] = unit.subject
    msg["Message-ID"] = header_text(message_id("digest", unit.key))
    msg.set_content(render("alert_digest.txt.j2", **context))
    msg.add_alternative(render("alert_digest.html.j2", **context), subtype="html")
    msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))  # anything unsendable fails here
    return msg


@dataclass
class SendSummary:
    emailed: int = 0  # alerts delivered (each counted once)
    mails: int = 0
    retracted: int = 0
    failed: int = 0
    unconfirmed: int = 0
    held: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    render_failures: list[tuple[str, str]] = field(default_factory=list)


def _drop_unrenderable(
    unit: Unit, descriptions: dict[str, str], conn: psycopg.Connection, summary: SendSummary
) -> None:
    """Leave out (and record) each alert that cannot be rendered; the others still go."""
    keep = []
    for row in unit.rows:
        try:
            item(row, descriptions)
            keep.append(row)
        except Exception as exc:  # noqa: BLE001 - one bad alert must not stop the others
            what = f"alert {row['rule']} [{row['segment']}] on {row['day']}"
            error = f"{type(exc).__name__}: {exc}"
            log.error("%s could not be rendered: %s", what, error)
            with conn.transaction():
                conn.execute(
                    "update publish.kpi_alerts set render_error = %s, render_failed_at = now()"
                    " where alert_id = %s",
                    (error, row["alert_id"]),
                )
            if (what, error) not in summary.render_failures:
                summary.render_failures.append((what, error))
    unit.rows = keep


def _claim(conn: psycopg.Connection, unit: Unit) -> bool:
    """Claim the unit's alerts for its audiences, atomically with every other run."""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (_LOCK,))
        ids = [r["alert_id"] for r in unit.rows]
        rids = [r["alert_id"] for r in unit.retracted]
        taken = conn.execute(
            "select count(*) from publish.alert_deliveries where audience = any(%s) and"
            " ((kind = 'alert' and alert_id = any(%s))"
            " or (kind = 'retraction' and alert_id = any(%s)))",
            (unit.audiences, ids, rids),
        ).fetchone()[0]
        if taken:
            return False  # another run got there first: it sends them
        n = conn.execute(
            "select count(*) from publish.digests where as_of = %s and kind = %s"
            " and audiences = %s",
            (unit.as_of, unit.kind, ",".join(unit.audiences)),
        ).fetchone()[0]
        ident = ids[0] if unit.kind == "immediate" else n + 1
        unit.key = f"{unit.kind}|{','.join(unit.audiences)}|{unit.as_of}|{ident}"
        conn.execute(
            "insert into publish.digests (digest_key, kind, audiences, as_of, subject,"
            " message_id) values (%s, %s, %s, %s, %s, %s)",
            (
                unit.key,
                unit.kind,
                ",".join(unit.audiences),
                unit.as_of,
                unit.subject,
                message_id("digest", unit.key),
            ),
        )
        for audience in unit.audiences:
            for kind, group in (("alert", ids), ("retraction", rids)):
                for alert_id in group:
                    conn.execute(
                        "insert into publish.alert_deliveries values (%s, %s, %s, %s)",
                        (alert_id, audience, kind, unit.key),
                    )
        conn.execute(
            "update publish.kpi_alerts set claimed_at = coalesce(claimed_at, now())"
            " where alert_id = any(%s)",
            (ids,),
        )
    return True


def _release(conn: psycopg.Connection, key: str, ids: list[int]) -> None:
    conn.execute("delete from publish.digests where digest_key = %s", (key,))
    conn.execute(
        "update publish.kpi_alerts a set claimed_at = null where alert_id = any(%s)"
        " and not exists (select 1 from publish.alert_deliveries d"
        " where d.alert_id = a.alert_id and d.kind = 'alert')",
        (ids,),
    )


def deliver(
    conn: psycopg.Connection,
    settings: MailSettings,
    rules: list[Rule],
    as_of: date,
    held: HoldCheck = no_hold,
) -> SendSummary:
    """Send every digest (and immediate alert) owed now, each at most once."""
    descriptions = {r.name: r.description for r in rules}
    summary = SendSummary()
    # emails claimed by a run that crashed (or an SMTP error of unknown outcome), and alerts
    # claimed one by one by earlier exops versions, never confirmed sent
    summary.unconfirmed = conn.execute(
        "select (select count(*) from publish.digests where emailed_at is null)"
        " + (select count(*) from publish.kpi_alerts a where claimed_at is not null"
        " and emailed_at is null and not exists (select 1 from publish.alert_deliveries d"
        " where d.alert_id = a.alert_id))"
    ).fetchone()[0]
    owed, held_rows = units(conn, as_of, held)
    summary.held = [f"{r['rule']} [{r['segment']}] on {r['day']}: {why}" for r, why in held_rows]
    delivered: set[int] = set()
    for unit in owed:
        _drop_unrenderable(unit, descriptions, conn, summary)
        if not unit.rows and not unit.retracted:
            continue
        try:
            msg = message(unit, settings, descriptions)
        except Exception as exc:  # noqa: BLE001 - recorded and told; the others still go
            what = f"{unit.kind} for {', '.join(unit.audiences)} on {as_of}"
            summary.render_failures.append((what, f"{type(exc).__name__}: {exc}"))
            continue
        if not _claim(conn, unit):
            continue
        msg.replace_header("Message-ID", header_text(message_id("digest", unit.key)))
        ids = [r["alert_id"] for r in unit.rows]
        try:
            send_claimed(
                conn,
                msg,
                settings,
                mark_sent=lambda c, k=unit.key, i=ids: (
                    c.execute(
                        "update publish.digests set emailed_at = now() where digest_key = %s",
                        (k,),
                    ),
                    c.execute(
                        "update publish.kpi_alerts set emailed_at = coalesce(emailed_at, now()),"
                        " render_error = null where alert_id = any(%s)",
                        (i,),
                    ),
                ),
                release=lambda c, k=unit.key, i=ids: _release(c, k, i),
            )
            summary.mails += 1
            summary.retracted += len(unit.retracted)
            delivered.update(i for i in ids)
        except SendError as exc:
            summary.failed += 1
            if not exc.not_sent:
                summary.unconfirmed += 1
            summary.errors.append(f"{unit.kind} {', '.join(unit.audiences)} {as_of}: {exc}")
            log.error("alert email failed: %s", exc)
    summary.emailed = len(delivered)
    return summary


def rows_of(conn: psycopg.Connection, alerts: list[Alert]) -> list[dict]:
    """The stored rows of ``alerts``, ranked as a digest ranks them."""
    keys = [(a.rule, a.segment, a.day) for a in alerts]
    if not keys:
        return []
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "select * from publish.kpi_alerts where (rule, segment, day) in"
            " (select * from unnest(%s::text[], %s::text[], %s::date[]))",
            ([k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]),
        )
        .fetchall()
    )
    return ranked([r for r in rows if r["retracted_at"] is None])
