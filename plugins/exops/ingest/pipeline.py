"""``ingest``: load every new or re-delivered complete partition of the landing zone."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path

from exops import warehouse

from . import audit
from .clock import latest_allowed, run_date
from .discovery import (
    Partition,
    checksums_of,
    discover,
    fingerprint,
    select_entities,
    stat_signature,
)
from .files import LandingRoot
from .load import load_partition
from .quarantine import retention_days
from .report import IngestReport, PartitionResult

log = logging.getLogger(__name__)


def ingest(
    landing: Path,
    *,
    url: str | None = None,
    sources: Iterable[str] | None = None,
    entities: Iterable[str] | None = None,
    dt_from: date | None = None,
    dt_to: date | None = None,
    rehash: bool = False,
    today: date | None = None,
    progress: Callable[[str], None] | None = None,
) -> IngestReport:
    """Load the landing zone at ``landing`` into ``raw.<source>_<entity>``.

    A complete partition (one with ``_SUCCESS``) is loaded when it was never loaded, or when
    its files or their sha256 differ from the loaded delivery (a re-delivery, which replaces
    the partition's rows atomically). A loaded partition whose files' names, sizes, inodes and
    times (and its _SUCCESS's) are what they were when it was loaded is not checksummed again
    (``rehash=True`` checksums every file anyway). Incomplete partitions, and partitions
    dated after ``today`` (the run's date: EXOPS_TODAY or the clock when None) plus
    EXOPS_MAX_FUTURE_DAYS, are reported and recorded in ``audit.pending_partitions``
    (status ``incomplete`` or ``future``), not loaded. Only regular files beneath the
    landing root are read; other entries are recorded as rejected. Bad data never raises: it
    is quarantined or rejected and recorded. A partition that fails for another reason (e.g.
    a database error) is reported as ``failed`` and the others still load; see
    :meth:`IngestReport.raise_for_failures`. Quarantined rows older than
    EXOPS_QUARANTINE_RETENTION_DAYS are purged. Runs as the loader (``url`` defaults to
    ``EXOPS_LOADER_URL``, see :func:`exops.warehouse.stage_url`).
    """
    started = time.monotonic()
    if not Path(landing).is_dir():
        raise FileNotFoundError(f"the landing directory {landing} does not exist")
    say = progress or (lambda message: None)
    scope = select_entities(sources, entities)
    today = run_date(today)
    latest = latest_allowed(today)
    retention = retention_days()
    with LandingRoot(Path(landing)) as root:
        scan = discover(root.path, scope, dt_from, dt_to)
        report = IngestReport(landing=str(landing), warnings=scan.warnings, today=today)
        touched: set[str] = set()
        with warehouse.connection(url or warehouse.stage_url("loader"), autocommit=True) as conn:
            audit.ensure_raw_tables(conn)
            loaded = audit.loaded_fingerprints(conn, scope)
            pending: dict[tuple[str, str, date], str] = {}
            for part in scan.partitions:
                if part.dt > latest or not part.complete:
                    action = "future" if part.dt > latest else "incomplete"
                    if part.key not in loaded:
                        pending[part.key] = action
                    result = PartitionResult(
                        part.source, part.entity.name, part.dt, action, files=part.entries
                    )
                    report.partitions.append(result)
                    say(result.describe())
                    continue
                result = _load(conn, root, part, loaded.get(part.key), rehash, say)
                if result.action in ("loaded", "replaced"):
                    touched.add(part.entity.qualified_table)
                report.partitions.append(result)
                say(result.describe())
            audit.sync_pending(conn, scope, pending, dt_from, dt_to)
            report.quarantine_purged = audit.purge_quarantine(conn, retention)
            for table in sorted(touched):
                conn.execute(f"analyze {table}")
    report.seconds = time.monotonic() - started
    return report


def _load(
    conn,
    root: LandingRoot,
    part: Partition,
    known: tuple[str, str | None] | None,
    rehash: bool,
    say: Callable[[str], None],
) -> PartitionResult:
    """Load one complete partition unless it is the delivery already loaded."""
    try:
        signature = stat_signature(part)
        known_fp = None
        if known is not None:
            if not rehash and known[1] == signature:
                return _unchanged(part)
            known_fp = fingerprint(checksums_of(root, part))
            if known[0] == known_fp:
                audit.record_stat_signature(conn, part.key, known_fp, signature)
                return _unchanged(part)
        say(f"{part}: loading {part.entries} file(s)")
        return load_partition(conn, root, part, signature, known_fp)
    except Exception as exc:  # one partition failing must not stop the others
        log.exception("loading %s failed", part)
        return PartitionResult(
            part.source,
            part.entity.name,
            part.dt,
            "failed",
            files=part.entries,
            error=f"{type(exc).__name__}: {exc}",
        )


def _unchanged(part: Partition) -> PartitionResult:
    return PartitionResult(part.source, part.entity.name, part.dt, "unchanged", files=part.entries)
