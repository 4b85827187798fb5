"""Loading one partition: one transaction that replaces its rows in raw and its audit.

Files are COPYed one by one, each inside a savepoint, so a file found unreadable half-way
(bad UTF-8 on line 90 000, a truncated gzip) is rolled back alone and recorded as rejected.
An advisory lock per partition keeps two concurrent runs from loading it twice: the second
one waits, then sees the fingerprint the first one recorded and leaves it unchanged.
"""

from __future__ import annotations

from datetime import date
from pathlib import PurePath

import psycopg
from psycopg.copy import QueuedLibpqWriter

from exops.contract import RAW_META_COLUMNS, Entity

from . import audit
from .discovery import Partition, checksums_of, file_format_problem, fingerprint
from .files import FileOutcome, LandingRoot, Unreadable, is_gzip
from .parse_csv import parse_csv
from .parse_jsonl import parse_jsonl
from .quarantine import Quarantine
from .report import PartitionResult
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
    root: LandingRoot,
    part: Partition,
    stat_signature: str | None = None,
    known_fingerprint: str | None = None,
) -> PartitionResult:
    """Load (or re-load) one complete partition atomically; conn must be in autocommit.

    Each file is read once: its sha256 is that of the bytes parsed, and the fingerprint
    recorded is made of those. ``known_fingerprint`` is the partition's fingerprint when the
    caller already checksummed it (a loaded partition whose files look touched).
    """
    e, dt = part.entity, part.dt
    result = PartitionResult(e.source, e.name, dt, "loaded", files=part.entries)
    with conn.transaction():
        conn.execute(
            "select pg_advisory_xact_lock(hashtext(%s), %s)",
            (f"exops.ingest:{e.table}", dt.toordinal()),
        )
        current = conn.execute(
            "select fingerprint, stat_signature from audit.partitions"
            " where source = %s and entity = %s and partition_date = %s",
            (e.source, e.name, dt),
        ).fetchone()
        if current is not None:
            # another run may have loaded it while we waited for the lock
            if known_fingerprint is None and stat_signature == current[1]:
                result.action = "unchanged"
                return result
            if known_fingerprint is None:
                known_fingerprint = fingerprint(checksums_of(root, part))
            if known_fingerprint == current[0]:
                result.action = "unchanged"
                return result
        load_id = conn.execute("select nextval('audit.load_id_seq')").fetchone()[0]
        result.load_id = load_id
        if current is not None:
            # audit and raw change together, so a partition never loaded has no raw rows
            result.action = "replaced"
            audit.supersede(conn, e, dt, load_id)
        checksums: dict[str, str] = {}
        outcomes: list[FileOutcome] = []
        for entry in part.rejected:
            outcome = FileOutcome("rejected", None, error=entry.reason, sha256=NOT_READ)
            checksums[entry.name] = entry.checksum
            audit.record_file(
                conn, load_id=load_id, e=e, dt=dt, file_path=entry.rel, outcome=outcome
            )
            outcomes.append(outcome)
            result.add(entry.rel, outcome)
        for path in part.files:
            rel = path.relative_to(root.path)
            file_path = rel.as_posix()
            outcome, bad = _load_file(conn, root, e, rel, file_path, load_id, dt)
            checksums[path.name] = outcome.sha256 or NOT_READ
            try:
                audit.record_file(
                    conn,
                    load_id=load_id,
                    e=e,
                    dt=dt,
                    file_path=file_path,
                    outcome=outcome,
                    quarantine=bad,
                )
            finally:
                if bad is not None:
                    bad.close()
            outcomes.append(outcome)
            result.add(file_path, outcome)
        audit.record_partition(
            conn,
            e=e,
            dt=dt,
            fingerprint=fingerprint(checksums),
            load_id=load_id,
            outcomes=outcomes,
            stat_signature=stat_signature,
        )
    result.rows_loaded = sum(o.rows_loaded for o in outcomes)
    result.rows_quarantined = sum(o.rows_quarantined for o in outcomes)
    return result


NOT_READ = "not read"


def _load_file(
    conn: psycopg.Connection,
    root: LandingRoot,
    e: Entity,
    rel: PurePath,
    file_path: str,
    load_id: int,
    dt: date,
) -> tuple[FileOutcome, Quarantine | None]:
    try:
        f = root.open(rel)
    except Unreadable as exc:  # not a regular file (any more)
        return FileOutcome("rejected", None, error=exc.reason, sha256=NOT_READ), None
    except OSError as exc:
        error = f"cannot read the file: {exc.strerror or exc}"
        return FileOutcome("rejected", None, error=error, sha256=NOT_READ), None
    try:
        problem = file_format_problem(rel, e)
        if problem is not None:
            return FileOutcome(
                "rejected", None, error=problem, sha256=f.sha256(), file_bytes=f.size
            ), None
        parse = parse_csv if e.file_format == "csv" else parse_jsonl
        suffix = meta_suffix(load_id, dt, file_path)
        bad = Quarantine(e, spool=True, prefix=audit.quarantine_prefix(load_id, e, dt, file_path))
        outcome: FileOutcome | None = None
        try:
            with conn.transaction(), conn.cursor() as cur:
                # a writer thread sends to the server while this one parses the next block: on
                # two cores parsing and the server's COPY then overlap instead of taking turns
                with cur.copy(copy_sql(e), writer=QueuedLibpqWriter(cur)) as copy:
                    outcome = parse(
                        f, e, suffix=suffix, write=copy.write, gz=is_gzip(rel), quarantine=bad
                    )
                    if outcome.status == "rejected":
                        raise _Discard
        except _Discard:
            pass
        except BaseException:
            bad.close()
            raise
        assert outcome is not None
        return outcome, bad
    finally:
        f.release()
