"""Publishing's tables, in its own schema ``publish`` (owned by ``exops_publisher``).

- ``kpi_alerts``: every alert found, unique on (rule, segment, day).
- ``reports_sent``: one row per as-of date whose daily report went out;
  ``section_errors`` names the sections that could not be rendered (the report went out
  without them).
- ``digests``: one row per email of alerts (an audience's digest of a day, an immediate
  alert, retractions), the outbox key; ``alert_deliveries`` says which alert (or which
  retraction) went to which audience in which digest.
- ``published_numbers``: every number published in a report or an alert, first value and
  when, and the value the last restatement listed (:mod:`exops.publish.restatements`).
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
    # digests (exops.publish.digest): what the alert is about, what moved, what is at stake
    "alter table publish.kpi_alerts add column if not exists mart text",
    "alter table publish.kpi_alerts add column if not exists metric text",
    "alter table publish.kpi_alerts add column if not exists scope jsonb",
    "alter table publish.kpi_alerts add column if not exists relative double precision",
    "alter table publish.kpi_alerts add column if not exists deliver text",
    "alter table publish.kpi_alerts add column if not exists stake_usd numeric",
    "alter table publish.kpi_alerts add column if not exists stake_what text",
    "alter table publish.kpi_alerts add column if not exists movers jsonb",
    "alter table publish.kpi_alerts add column if not exists retracted_at timestamptz",
    "alter table publish.kpi_alerts add column if not exists retraction_note text",
    "alter table publish.kpi_alerts add column if not exists retracted_as_of date",
    """
    create table if not exists publish.digests (
      digest_key text primary key,
      kind text not null,
      audiences text not null,
      as_of date not null,
      subject text not null,
      message_id text not null,
      claimed_at timestamptz not null default now(),
      emailed_at timestamptz
    )
    """,
    """
    create table if not exists publish.alert_deliveries (
      alert_id bigint not null references publish.kpi_alerts (alert_id),
      audience text not null,
      kind text not null,
      digest_key text not null references publish.digests (digest_key) on delete cascade,
      primary key (alert_id, audience, kind)
    )
    """,
    """
    create table if not exists publish.published_numbers (
      number_key text primary key,
      mart text not null,
      metric text not null,
      scope jsonb not null,
      day date not null,
      first_value double precision,
      first_as_of date not null,
      first_publication text not null,
      first_published_at timestamptz not null default now(),
      listed_value double precision,
      listed_as_of date
    )
    """,
)
# earlier exops versions kept these in schema audit
FORMERLY_IN_AUDIT = ("kpi_alerts", "reports_sent")


def ensure_publish_tables(conn: psycopg.Connection) -> None:
    """Publishing's tables (idempotent)."""
    ensure_tables(conn, "publish", PUBLISH_DDL, FORMERLY_IN_AUDIT)
