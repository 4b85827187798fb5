"""Publishing's tables, in its own schema ``publish`` (owned by ``exops_publisher``).

- ``kpi_alerts``: every alert found, unique on (rule, segment, day).
- ``reports_sent``: one row per as-of date whose daily report went out;
  ``section_errors`` names the sections that could not be rendered (the report went out
  without them).
- ``kpi_alerts.render_error``: an alert whose email could not be rendered is left
  unclaimed with the error and ``render_failed_at``; the next run tries it again.

Each of these rows is a mail's key in the at-most-once outbox (:mod:`exops.outbox`).
``publish.notifications``, which every stage writes, is :mod:`exops.notify`'s.
"""

from __future__ import annotations

import psycopg

from exops.warehouse import ensure_tables

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
)
# earlier exops versions kept these in schema audit
FORMERLY_IN_AUDIT = ("kpi_alerts", "reports_sent")


def ensure_publish_tables(conn: psycopg.Connection) -> None:
    """Publishing's tables (idempotent)."""
    ensure_tables(conn, "publish", PUBLISH_DDL, FORMERLY_IN_AUDIT)
