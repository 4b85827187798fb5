"""The raw tables and the load audit (``audit.*``).

Reconciling audit with raw (for any source/entity, optionally per partition_date)::

    select sum(rows_loaded) from audit.loads
     where source = 'exchange' and entity = 'trades' and superseded_by is null
    -- equals
    select count(*) from raw.exchange_trades

and ``sum(rows_quarantined)`` over the same current loads equals the number of
``audit.quarantine`` rows of that source/entity. Every file row satisfies
``rows_in_file = rows_loaded + rows_quarantined`` unless ``rows_in_file`` is null (a file
that could not be decoded at all); a check constraint enforces it.

Tables:

- ``audit.loads``: one row per file (or entry never opened) per load of a partition. A
  re-delivery or an unload keeps the older rows for history, with ``superseded_by`` set to
  the load (or ``audit.unloads.unload_id``) that retired them and ``superseded_reason``
  'redelivery' or 'unload'; current rows have ``superseded_by is null``. ``mostly_bad``: more
  than half of the file's rows were quarantined.
- ``audit.quarantine``: one row per rejected row of the current loads (a re-delivery
  deletes the partition's older rows). ``column_name`` is null when the whole row is wrong;
  ``raw_text`` is masked and capped (null past a file's first 1,000 bad rows),
  ``raw_sha256`` is of the whole raw line. Rows past their retention are purged (their
  counts stay in audit.loads, so the reconciliation below holds for recent loads only).
- ``audit.partitions``: one row per loaded partition: its current load and fingerprint (file
  names and sha256s), and the files' stat signature then (a run that finds the same
  signature does not checksum the partition again).
- ``audit.pending_partitions``: partitions seen and not loaded, with when they were first
  seen and why: status ``incomplete`` (no ``_SUCCESS`` yet; late, for freshness checks) or
  ``future`` (dated after the run's date plus its allowed lead).
- ``audit.unloads``: one row per ``exops unload``: the load it took back, the rows removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

import psycopg

from exops.contract import ENTITIES, Entity, raw_table_ddl
from exops.warehouse import require_schemas

from .files import FileOutcome
from .quarantine import Quarantine, copy_lines
from .values import copy_text

AUDIT_DDL = (
    "create sequence if not exists audit.load_id_seq",
    """
    create table if not exists audit.loads (
      load_id bigint not null,
      source text not null,
      entity text not null,
      partition_date date not null,
      file_path text not null,
      sha256 text not null,
      file_bytes bigint not null,
      rows_in_file bigint,
      rows_loaded bigint not null,
      rows_quarantined bigint not null,
      status text not null check (status in ('loaded', 'empty', 'rejected')),
      error text,
      loaded_at timestamptz not null default now(),
      superseded_by bigint,
      mostly_bad boolean not null default false,
      superseded_reason text check (superseded_reason in ('redelivery', 'unload')),
      primary key (load_id, file_path),
      check (rows_in_file is null or rows_in_file = rows_loaded + rows_quarantined)
    )
    """,
    "create index if not exists loads_partition_idx"
    " on audit.loads (source, entity, partition_date)",
    """
    create table if not exists audit.quarantine (
      load_id bigint not null,
      source text not null,
      entity text not null,
      partition_date date not null,
      file_path text not null,
      line integer not null,
      column_name text,
      reason text not null,
      raw_text text,
      quarantined_at timestamptz not null default now(),
      raw_sha256 text
    )
    """,
    "create index if not exists quarantine_partition_idx"
    " on audit.quarantine (source, entity, partition_date)",
    """
    create table if not exists audit.partitions (
      source text not null,
      entity text not null,
      partition_date date not null,
      fingerprint text not null,
      load_id bigint not null,
      files integer not null,
      files_rejected integer not null,
      rows_loaded bigint not null,
      rows_quarantined bigint not null,
      loaded_at timestamptz not null,
      first_loaded_at timestamptz not null,
      loads integer not null,
      stat_signature text,
      primary key (source, entity, partition_date)
    )
    """,
    """
    create table if not exists audit.pending_partitions (
      source text not null,
      entity text not null,
      partition_date date not null,
      first_seen_at timestamptz not null default now(),
      status text not null default 'incomplete' check (status in ('incomplete', 'future')),
      primary key (source, entity, partition_date)
    )
    """,
    """
    create table if not exists audit.unloads (
      unload_id bigint primary key,
      source text not null,
      entity text not null,
      partition_date date not null,
      load_id bigint not null,
      fingerprint text not null,
      rows_removed bigint not null,
      rows_quarantined_removed bigint not null,
      note text,
      unloaded_at timestamptz not null default now()
    )
    """,
)

# columns later exops versions added to audit tables an earlier one created
ADDED_COLUMNS = (
    ("partitions", "stat_signature", "text"),
    ("loads", "mostly_bad", "boolean not null default false"),
    (
        "loads",
        "superseded_reason",
        "text check (superseded_reason in ('redelivery', 'unload'))",
    ),
    ("quarantine", "raw_sha256", "text"),
    (
        "pending_partitions",
        "status",
        "text not null default 'incomplete' check (status in ('incomplete', 'future'))",
    ),
)
AUDIT_RELATIONS = (
    "load_id_seq",
    "loads",
    "loads_partition_idx",
    "quarantine",
    "quarantine_partition_idx",
    "partitions",
    "pending_partitions",
    "unloads",
)

QUARANTINE_COLUMNS = (
    "load_id",
    "source",
    "entity",
    "partition_date",
    "file_path",
    "line",
    "column_name",
    "reason",
    "raw_text",
    "raw_sha256",
)


def ensure_raw_tables(conn: psycopg.Connection) -> None:
    """Create every raw table and the audit tables (idempotent) in schemas raw and audit.

    The catalog is read first and, when nothing is missing (every run but the first), no
    DDL runs and no lock is taken: even ``create index if not exists`` locks its table
    against writes, so ingest tasks of different sources would wait on each other's COPY.
    """
    if not _missing_relations(conn):
        return
    require_schemas(conn, ("raw", "audit"))
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('exops.ensure_raw_tables'))")
        for e in ENTITIES:
            conn.execute(raw_table_ddl(e))
            # a re-delivery deletes its partition's rows by _dt; BRIN, not btree: it costs
            # loading next to nothing (a btree made COPY ~40% slower) and rows arrive by dt
            conn.execute(
                f"create index if not exists {e.table}__dt_brin on {e.qualified_table}"
                " using brin (_dt) with (autosummarize = on)"
            )
        for ddl in AUDIT_DDL:
            conn.execute(ddl)
        present = _audit_columns(conn)
        for table, column, definition in ADDED_COLUMNS:
            if (table, column) not in present:
                conn.execute(f"alter table audit.{table} add column {column} {definition}")


def _missing_relations(conn: psycopg.Connection) -> set[str]:
    """Raw and audit tables, indexes, sequences and audit columns that do not exist yet."""
    wanted = {f"raw.{e.table}" for e in ENTITIES}
    wanted |= {f"raw.{e.table}__dt_brin" for e in ENTITIES}
    wanted |= {f"audit.{name}" for name in AUDIT_RELATIONS}
    found = conn.execute(
        "select n.nspname || '.' || c.relname from pg_class c"
        " join pg_namespace n on n.oid = c.relnamespace where n.nspname in ('raw', 'audit')"
    ).fetchall()
    missing = wanted - {name for (name,) in found}
    present = _audit_columns(conn)
    missing |= {f"audit.{t}.{c}" for t, c, _ in ADDED_COLUMNS if (t, c) not in present}
    return missing


def _audit_columns(conn: psycopg.Connection) -> set[tuple[str, str]]:
    rows = conn.execute(
        "select c.relname, a.attname from pg_attribute a"
        " join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'audit' and a.attnum > 0 and not a.attisdropped"
    ).fetchall()
    return {(t, c) for t, c in rows}


def purge_quarantine(conn: psycopg.Connection, retention_days: int) -> int:
    """Delete audit.quarantine rows older than ``retention_days``; how many went.

    Only the rows' details go: every file's counts stay in audit.loads.
    """
    cur = conn.execute(
        "delete from audit.quarantine where quarantined_at < now() - make_interval(days => %s)",
        (retention_days,),
    )
    return cur.rowcount


def loaded_fingerprints(
    conn: psycopg.Connection, scope: Iterable[Entity]
) -> dict[tuple[str, str, date], tuple[str, str | None]]:
    """(fingerprint, stat signature) of every loaded partition of the entities in scope."""
    pairs = [(e.source, e.name) for e in scope]
    rows = conn.execute(
        "select source, entity, partition_date, fingerprint, stat_signature from audit.partitions"
        " where (source, entity) in (select * from unnest(%s::text[], %s::text[]))",
        ([s for s, _ in pairs], [n for _, n in pairs]),
    ).fetchall()
    return {(s, n, d): (fp, sig) for s, n, d, fp, sig in rows}


def record_stat_signature(
    conn: psycopg.Connection, key: tuple[str, str, date], fingerprint: str, signature: str
) -> None:
    """The partition's files were touched, not changed: remember how they look now."""
    conn.execute(
        "update audit.partitions set stat_signature = %s"
        " where (source, entity, partition_date) = (%s, %s, %s) and fingerprint = %s",
        (signature, *key, fingerprint),
    )


def supersede(
    conn: psycopg.Connection, e: Entity, dt: date, load_id: int, reason: str = "redelivery"
) -> tuple[int, int]:
    """Retire what an earlier load of this partition left: raw rows, quarantine, audit.

    The earlier audit.loads rows stay, with ``superseded_by`` (the load, or unload, that
    retired them) and ``superseded_reason`` ('redelivery' or 'unload'). Returns the raw and
    quarantine rows removed.
    """
    raw = conn.execute(f"delete from {e.qualified_table} where _dt = %s", (dt,)).rowcount
    quarantined = conn.execute(
        "delete from audit.quarantine where source = %s and entity = %s and partition_date = %s",
        (e.source, e.name, dt),
    ).rowcount
    conn.execute(
        "update audit.loads set superseded_by = %s, superseded_reason = %s"
        " where source = %s and entity = %s and partition_date = %s and superseded_by is null",
        (load_id, reason, e.source, e.name, dt),
    )
    return raw, quarantined


def quarantine_prefix(load_id: int, e: Entity, dt: date, file_path: str) -> str:
    """COPY text of the audit.quarantine columns before ``line``, for one file."""
    return f"{load_id}\t{e.source}\t{e.name}\t{dt.isoformat()}\t{copy_text(file_path)}\t"


def record_file(
    conn: psycopg.Connection,
    *,
    load_id: int,
    e: Entity,
    dt: date,
    file_path: str,
    outcome: FileOutcome,
    quarantine: Quarantine | None = None,
) -> None:
    """A file's audit.loads row, and its quarantined rows (streamed from ``quarantine``, or
    those the outcome kept in memory)."""
    conn.execute(
        "insert into audit.loads (load_id, source, entity, partition_date, file_path, sha256,"
        " file_bytes, rows_in_file, rows_loaded, rows_quarantined, status, error, mostly_bad)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            load_id,
            e.source,
            e.name,
            dt,
            file_path,
            outcome.sha256 or "",
            outcome.file_bytes,
            outcome.rows_in_file,
            outcome.rows_loaded,
            outcome.rows_quarantined,
            outcome.status,
            outcome.error,
            outcome.mostly_bad,
        ),
    )
    if not outcome.rows_quarantined:
        return
    prefix = quarantine_prefix(load_id, e, dt, file_path)
    chunks = (
        quarantine.copy_chunks()
        if quarantine is not None
        else copy_lines(outcome.quarantined, prefix)
    )
    sql = f"copy audit.quarantine ({', '.join(QUARANTINE_COLUMNS)}) from stdin"
    with conn.cursor() as cur, cur.copy(sql) as copy:
        for chunk in chunks:
            copy.write(chunk)


def record_partition(
    conn: psycopg.Connection,
    *,
    e: Entity,
    dt: date,
    fingerprint: str,
    load_id: int,
    outcomes: Sequence[FileOutcome],
    stat_signature: str | None = None,
) -> None:
    conn.execute(
        """
        insert into audit.partitions as p (source, entity, partition_date, fingerprint, load_id,
          files, files_rejected, rows_loaded, rows_quarantined, loaded_at, first_loaded_at, loads,
          stat_signature)
        values (%s, %s, %s, %s, %s, %s, %s, %s, %s, now(), now(), 1, %s)
        on conflict (source, entity, partition_date) do update set
          fingerprint = excluded.fingerprint, load_id = excluded.load_id,
          stat_signature = excluded.stat_signature,
          files = excluded.files, files_rejected = excluded.files_rejected,
          rows_loaded = excluded.rows_loaded, rows_quarantined = excluded.rows_quarantined,
          loaded_at = excluded.loaded_at, loads = p.loads + 1
        """,
        (
            e.source,
            e.name,
            dt,
            fingerprint,
            load_id,
            len(outcomes),
            sum(o.status == "rejected" for o in outcomes),
            sum(o.rows_loaded for o in outcomes),
            sum(o.rows_quarantined for o in outcomes),
            stat_signature,
        ),
    )
    conn.execute(
        "delete from audit.pending_partitions"
        " where source = %s and entity = %s and partition_date = %s",
        (e.source, e.name, dt),
    )


def sync_pending(
    conn: psycopg.Connection,
    scope: Sequence[Entity],
    pending: dict[tuple[str, str, date], str],
    dt_from: date | None,
    dt_to: date | None,
) -> None:
    """Make audit.pending_partitions, within the scanned scope, list exactly ``pending``
    (partition -> status: ``incomplete``, no _SUCCESS yet, or ``future``, dated after the
    run's date and its allowed lead).

    Rows already there keep their first_seen_at, so a rerun with nothing new changes nothing.
    """
    keys = sorted(pending)
    pairs = [(e.source, e.name) for e in scope]
    with conn.transaction():
        conn.execute(
            """
            delete from audit.pending_partitions p
             where (source, entity) in (select * from unnest(%(ss)s::text[], %(es)s::text[]))
               and (%(lo)s::date is null or partition_date >= %(lo)s)
               and (%(hi)s::date is null or partition_date <= %(hi)s)
               and (source, entity, partition_date) not in (
                 select * from unnest(%(ps)s::text[], %(pe)s::text[], %(pd)s::date[]))
            """,
            {
                "ss": [s for s, _ in pairs],
                "es": [n for _, n in pairs],
                "lo": dt_from,
                "hi": dt_to,
                "ps": [p[0] for p in keys],
                "pe": [p[1] for p in keys],
                "pd": [p[2] for p in keys],
            },
        )
        if keys:
            with conn.cursor() as cur:
                cur.executemany(
                    "insert into audit.pending_partitions as p"
                    " (source, entity, partition_date, status) values (%s, %s, %s, %s)"
                    " on conflict (source, entity, partition_date) do update"
                    " set status = excluded.status where p.status <> excluded.status",
                    [(*k, pending[k]) for k in keys],
                )
