"""``unload``: take a loaded partition back out of raw, recorded like a re-delivery.

In one transaction (under the partition's load lock): its raw rows and quarantined rows are
deleted, its current ``audit.loads`` rows are kept for history with ``superseded_by`` set to
the unload's id and ``superseded_reason = 'unload'``, an ``audit.unloads`` row records it, and
its ``audit.partitions`` row goes (the as-of date no longer counts it). The next transform
rebuilds from it as it does after a re-delivery. If its files are still in the landing zone,
the next ingest treats the partition as new: loaded if complete and not future.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from exops import warehouse
from exops.contract import ENTITY_BY_PATH

from . import audit


class UnloadError(ValueError):
    pass


@dataclass(frozen=True)
class Unloaded:
    unload_id: int
    source: str
    entity: str
    dt: date
    load_id: int  # the load it took back
    rows_removed: int
    rows_quarantined_removed: int

    def describe(self) -> str:
        return (
            f"unloaded {self.source}/{self.entity} dt={self.dt.isoformat()} (load {self.load_id}):"
            f" {self.rows_removed:,} raw rows and {self.rows_quarantined_removed:,} quarantined"
            f" rows removed; recorded as unload {self.unload_id} in audit.unloads"
        )


def unload(
    source: str, entity: str, dt: date, *, note: str | None = None, url: str | None = None
) -> Unloaded:
    e = ENTITY_BY_PATH.get((source, entity))
    if e is None:
        raise UnloadError(f"unknown entity {source}/{entity}")
    with warehouse.connection(url or warehouse.stage_url("loader"), autocommit=True) as conn:
        audit.ensure_raw_tables(conn)
        with conn.transaction():
            conn.execute(
                "select pg_advisory_xact_lock(hashtext(%s), %s)",
                (f"exops.ingest:{e.table}", dt.toordinal()),
            )
            current = conn.execute(
                "delete from audit.partitions"
                " where source = %s and entity = %s and partition_date = %s"
                " returning load_id, fingerprint",
                (source, entity, dt),
            ).fetchone()
            if current is None:
                raise UnloadError(
                    f"{source}/{entity} dt={dt.isoformat()} is not loaded: nothing to unload"
                )
            load_id, fp = current
            unload_id = conn.execute("select nextval('audit.load_id_seq')").fetchone()[0]
            raw, quarantined = audit.supersede(conn, e, dt, unload_id, reason="unload")
            conn.execute(
                "insert into audit.unloads (unload_id, source, entity, partition_date, load_id,"
                " fingerprint, rows_removed, rows_quarantined_removed, note)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (unload_id, source, entity, dt, load_id, fp, raw, quarantined, note),
            )
    return Unloaded(unload_id, source, entity, dt, load_id, raw, quarantined)
