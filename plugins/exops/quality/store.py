"""The quality gate's tables, in its own schema ``quality`` (owned by ``exops_transformer``,
which runs the gate; the publisher reads it).

- ``validation_runs`` / ``validation_results``: one row per run (with the days it checked
  and the loads it covered) and one per expectation of the run. ``publish`` reads the
  latest run of its as-of date.
- ``dq_notifications``: one row per (as_of, failure_key) data-quality email, where
  failure_key names the failed critical expectations: rerunning validation on the same
  broken data never sends a second email (:mod:`exops.outbox`).
"""

from __future__ import annotations

import psycopg

from exops.warehouse import ensure_tables

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
# earlier exops versions kept these in schema audit
FORMERLY_IN_AUDIT = ("validation_runs", "validation_results", "dq_notifications")


def ensure_quality_tables(conn: psycopg.Connection) -> None:
    """The quality gate's tables (idempotent)."""
    ensure_tables(conn, "quality", QUALITY_DDL, FORMERLY_IN_AUDIT)
