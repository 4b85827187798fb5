"""The as-of date: the greatest partition date loaded (shared/spec/SOURCES.md)."""

from __future__ import annotations

from datetime import date

import psycopg


class AsOfError(RuntimeError):
    pass


def resolve_as_of(conn: psycopg.Connection, as_of: date | None = None) -> date:
    if as_of is not None:
        return as_of
    exists = conn.execute("select to_regclass('audit.partitions') is not null").fetchone()[0]
    if not exists:
        raise AsOfError("no load recorded (audit.partitions is missing): run `exops ingest` first")
    found = conn.execute("select max(partition_date) from audit.partitions").fetchone()[0]
    if found is None:
        raise AsOfError("no partition loaded yet (audit.partitions is empty)")
    return found
