"""The quality gate's and publishing's tables, and sending a mail at most once per key.

Schema ``quality`` (owned by ``exops_transformer``, which runs the gate; the publisher reads
it):

- ``validation_runs`` / ``validation_results``: written by :mod:`exops.quality`; one row per
  run (with the days it checked and the loads it covered) and one per expectation of the
  run. ``publish`` reads the latest run of its as-of date.
- ``dq_notifications``: one row per (as_of, failure_key) data-quality email, where
  failure_key names the failed critical expectations: rerunning validation on the same
  broken data never sends a second email.

Schema ``publish`` (owned by ``exops_publisher``):

- ``kpi_alerts``: every alert found, unique on (rule, segment, day).
- ``reports_sent``: one row per as-of date whose daily report went out;
  ``section_errors`` names the sections that could not be rendered (the report went out
  without them).
- ``kpi_alerts.render_error``: an alert whose email could not be rendered is left
  unclaimed with the error and ``render_failed_at``; the next run tries it again.
- ``notifications``: one row per email told to data engineers about the platform itself
  (a failed stage of a DAG run, alerts or report sections that could not be rendered, a
  day not published by its deadline), keyed by what it is about: see
  :mod:`exops.publish.notify`.

At most once, also across retries and crashes. Each mail has a key row. Sending is
claim -> SMTP -> mark:

1. claim: ``update ... set claimed_at = now() where <key> and claimed_at is null returning``
   (or an insert that conflicts), committed before anything is sent. Only one run can
   claim a key, so two concurrent runs never both send.
2. SMTP. If the server definitely did not take the message (connection refused, a
   recipient or the data refused), the claim is released and the next run retries.
3. on success, ``emailed_at = now()``.

A crash (or an ambiguous SMTP error) between 1 and 3 leaves ``claimed_at`` set and
``emailed_at`` null. Such a row is never sent again automatically, because the server may
have accepted the message: we choose at-most-once over at-least-once, since a duplicate
alert is exactly what ops asked never to get. These rows are reported as "unconfirmed" by
``publish`` so a person can check the mailbox (the Message-ID is deterministic, derived from
the key) and call :func:`release_unconfirmed` to resend.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from email.message import EmailMessage

import psycopg

from exops.publish.mail import MailSettings, SendError, send
from exops.warehouse import require_schemas

QUALITY_DDL = (
    """
    create table if not exists quality.validation_runs (
      run_id text primary key,
      as_of date not null,
      passed boolean not null,
      expectations integer not null,
      critical_failures integer not null,
      warnings integer not null,
      data_docs text,
      started_at timestamptz not null,
      finished_at timestamptz not null default now()
    )
    """,
    "create index if not exists validation_runs_as_of_idx on quality.validation_runs (as_of)",
    # the days a run checked (window_start null: all of them) and the loads it covered
    "alter table quality.validation_runs add column if not exists window_start date",
    "alter table quality.validation_runs add column if not exists load_id_ceiling bigint",
    """
    create table if not exists quality.validation_results (
      run_id text not null,
      as_of date not null,
      suite text not null,
      expectation text not null,
      severity text not null check (severity in ('critical', 'warning')),
      success boolean not null,
      observed jsonb,
      examples jsonb not null default '[]'::jsonb,
      created_at timestamptz not null default now(),
      primary key (run_id, suite, expectation)
    )
    """,
    """
    create table if not exists quality.dq_notifications (
      as_of date not null,
      failure_key text not null,
      run_id text not null,
      message_id text not null,
      recipients text not null,
      claimed_at timestamptz not null default now(),
      emailed_at timestamptz,
      primary key (as_of, failure_key)
    )
    """,
)
PUBLISH_DDL = (
    """
    create table if not exists publish.kpi_alerts (
      alert_id bigserial primary key,
      rule text not null,
      segment text not null,
      day date not null,
      value numeric,
      baseline numeric,
      message text not null,
      severity text not null,
      recipients text not null,
      as_of date not null,
      created_at timestamptz not null default now(),
      message_id text not null,
      claimed_at timestamptz,
      emailed_at timestamptz,
      unique (rule, segment, day)
    )
    """,
    """
    create table if not exists publish.reports_sent (
      as_of date primary key,
      path text not null,
      message_id text not null,
      recipients text not null,
      claimed_at timestamptz not null default now(),
      emailed_at timestamptz
    )
    """,
    "alter table publish.reports_sent add column if not exists section_errors text",
    "alter table publish.kpi_alerts add column if not exists render_error text",
    "alter table publish.kpi_alerts add column if not exists render_failed_at timestamptz",
    """
    create table if not exists publish.notifications (
      notification_key text primary key,
      kind text not null,
      subject text not null,
      details text not null,
      message_id text not null,
      recipients text not null,
      claimed_at timestamptz not null default now(),
      emailed_at timestamptz
    )
    """,
)


# tables earlier exops versions kept in schema audit, and the schema they live in now
MOVED_TABLES = {
    "validation_runs": "quality",
    "validation_results": "quality",
    "dq_notifications": "quality",
    "kpi_alerts": "publish",
    "reports_sent": "publish",
    "notifications": "publish",
}


def move_old_tables(conn: psycopg.Connection, schema: str) -> None:
    """Move ``schema``'s tables an earlier version kept in audit (their history matters: a
    mail key row that were lost would let that mail go out twice)."""
    for table in (t for t, s in MOVED_TABLES.items() if s == schema):
        old, new = conn.execute(
            "select to_regclass(%s), to_regclass(%s)", (f"audit.{table}", f"{schema}.{table}")
        ).fetchone()
        if old is not None and new is None:
            conn.execute(f"alter table audit.{table} set schema {schema}")


def _ensure(conn: psycopg.Connection, schema: str, ddl: tuple[str, ...]) -> None:
    require_schemas(conn, (schema,))
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"exops.{schema}.tables",))
        # init moves them; a single-URL setup upgraded without init moves them here
        move_old_tables(conn, schema)
        for statement in ddl:
            conn.execute(statement)


def ensure_quality_tables(conn: psycopg.Connection) -> None:
    """The quality gate's tables in its own schema ``quality`` (idempotent)."""
    _ensure(conn, "quality", QUALITY_DDL)


def ensure_publish_tables(conn: psycopg.Connection) -> None:
    """Publishing's tables in its own schema ``publish`` (idempotent)."""
    _ensure(conn, "publish", PUBLISH_DDL)


def message_id(*key: object) -> str:
    digest = hashlib.sha256("|".join(str(k) for k in key).encode()).hexdigest()[:32]
    return f"<{digest}@exops>"


def send_claimed(
    conn: psycopg.Connection,
    message: EmailMessage,
    settings: MailSettings,
    mark_sent: Callable[[psycopg.Connection], None],
    release: Callable[[psycopg.Connection], None],
) -> None:
    """Send a message whose key row this process has claimed (and committed)."""
    try:
        send(message, settings)
    except SendError as exc:
        if exc.not_sent:
            with conn.transaction():
                release(conn)
        raise
    with conn.transaction():
        mark_sent(conn)


def release_unconfirmed(conn: psycopg.Connection, table: str) -> int:
    """Let claimed-but-unconfirmed mails of ``table`` be sent again (after a human checked)."""
    schema = {
        "kpi_alerts": "publish",
        "reports_sent": "publish",
        "notifications": "publish",
        "dq_notifications": "quality",
    }
    if table not in schema:
        raise ValueError(f"no mail table {table!r}")
    if table == "kpi_alerts":
        sql = "update publish.kpi_alerts set claimed_at = null where emailed_at is null"
    else:
        sql = f"delete from {schema[table]}.{table} where emailed_at is null"
    with conn.transaction():
        return conn.execute(sql).rowcount
