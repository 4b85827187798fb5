"""Loading one partition: one transaction that replaces its rows in raw and its audit.

Files are COPYed one by one, each inside a savepoint, so a file found unreadable half-way
(bad UTF-8 on line 90 000, a truncated gzip) is rolled back alone and recorded as rejected.
An advisory lock per partition keeps two concurrent runs from loading it twice: the second
one waits, then sees the fingerprint the first one recorded and leaves it unchanged.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import psycopg
from psycopg.copy import QueuedLibpqWriter

from exops.contract import RAW_META_COLUMNS, Entity

from . import audit
from .discovery import Partition, file_format_problem
from .files import FileOutcome
from .parse_csv import parse_csv
from .parse_jsonl import parse_jsonl
from .report import FileResult, PartitionResult
from .values import copy_text


class _Discard(Exception):
    """Raised inside a COPY to cancel it (its savepoint is rolled back)."""


def copy_sql(e: Entity) -> str:
    """The COPY the parsers' lines are made for: contract columns, then _line, then meta."""
    meta = [name for name, _ in RAW_META_COLUMNS if name != "_line"]
    columns = [*e.column_names, "_line", *meta]
    # CSV: an empty field is null; JSON: \N is null and "" is an empty string
    null = "null ''" if e.file_format == "csv" else "null '\\N'"
    return f"copy {e.qualified_table} ({', '.join(columns)}) from stdin (format text, {null})"


def meta_suffix(load_id: int, dt: date, file_path: str) -> str:
    """Tab-separated values of the meta columns after _line, and the line's end."""
    return f"\t{load_id}\t{dt.isoformat()}\t{copy_text(file_path)}\n"


def load_partition(
    conn: psycopg.Connection,
    landing: Path,
    part: Partition,
    fingerprint: str,
    checksums: dict[str, str],
    stat_signature: str | None = None,
) -> PartitionResult:
    """Load (or re-load) one complete partition atomically; conn must be in autocommit."""
    e, dt = part.entity, part.dt
    result = PartitionResult(e.source, e.name, dt, "loaded", files=len(part.files))
    with conn.transaction():
        conn.execute(
            "select pg_advisory_xact_lock(hashtext(%s), %s)",
            (f"exops.ingest:{e.table}", dt.toordinal()),
        )
        current = conn.execute(
            "select fingerprint from audit.partitions"
            " where source = %s and entity = %s and partition_date = %s",
            (e.source, e.name, dt),
        ).fetchone()
        if current is not None and current[0] == fingerprint:
            result.action = "unchanged"  # another run loaded it while we waited
            return result
        load_id = conn.execute("select nextval('audit.load_id_seq')").fetchone()[0]
        result.load_id = load_id
        if current is not None:
            # audit and raw change together, so a partition never loaded has no raw rows
            result.action = "replaced"
            audit.supersede(conn, e, dt, load_id)
        outcomes: list[FileOutcome] = []
        for path in part.files:
            file_path = path.relative_to(landing).as_posix()
            outcome = _load_file(conn, e, path, file_path, load_id, dt)
            audit.record_file(
                conn,
                load_id=load_id,
                e=e,
                dt=dt,
                file_path=file_path,
                sha256=checksums[path.name],
                file_bytes=_size(path),
                outcome=outcome,
            )
            outcomes.append(outcome)
            file_result = FileResult(
                file_path,
                outcome.status,
                outcome.rows_in_file,
                outcome.rows_loaded,
                outcome.rows_quarantined,
                outcome.error,
            )
            result.file_results.append(file_result)
            if outcome.status == "rejected":
                result.rejected_files.append(file_result)
        audit.record_partition(
            conn,
            e=e,
            dt=dt,
            fingerprint=fingerprint,
            load_id=load_id,
            outcomes=outcomes,
            stat_signature=stat_signature,
        )
    result.rows_loaded = sum(o.rows_loaded for o in outcomes)
    result.rows_quarantined = sum(o.rows_quarantined for o in outcomes)
    return result


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _load_file(
    conn: psycopg.Connection, e: Entity, path: Path, file_path: str, load_id: int, dt: date
) -> FileOutcome:
    problem = file_format_problem(path, e)
    if problem is not None:
        return FileOutcome("rejected", None, error=problem)
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        return FileOutcome("rejected", None, error=f"cannot read the file: {exc.strerror or exc}")
    parse = parse_csv if e.file_format == "csv" else parse_jsonl
    suffix = meta_suffix(load_id, dt, file_path)
    outcome: FileOutcome | None = None
    try:
        with conn.transaction(), conn.cursor() as cur:
            # a writer thread sends to the server while this one parses the next block: on
            # two cores parsing and the server's COPY then overlap instead of taking turns
            with cur.copy(copy_sql(e), writer=QueuedLibpqWriter(cur)) as copy:
                outcome = parse(path, e, suffix=suffix, write=copy.write)
                if outcome.status == "rejected":
                    raise _Discard
    except _Discard:
        pass
    assert outcome is not None
    return outcome
