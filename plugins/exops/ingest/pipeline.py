"""``ingest``: load every new or re-delivered complete partition of the landing zone."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path

from exops import warehouse

from . import audit
from .discovery import discover, fingerprint, select_entities, sha256_of, stat_signature
from .load import load_partition
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
    progress: Callable[[str], None] | None = None,
) -> IngestReport:
    """Load the landing zone at ``landing`` into ``raw.<source>_<entity>``.

    A complete partition (one with ``_SUCCESS``) is loaded when it was never loaded, or when
    its files or their sha256 differ from the loaded delivery (a re-delivery, which replaces
    the partition's rows atomically). A loaded partition whose files' names, sizes, inodes and
    times (and its _SUCCESS's) are what they were when it was loaded is not checksummed again
    (``rehash=True`` checksums every file anyway). Incomplete partitions are reported and
    recorded in ``audit.pending_partitions``. Bad data never raises: it is quarantined or
    rejected and recorded. A partition that fails for another reason (e.g. a database error)
    is reported as ``failed`` and the others still load; see
    :meth:`IngestReport.raise_for_failures`.
    """
    started = time.monotonic()
    landing = Path(landing)
    if not landing.is_dir():
        raise FileNotFoundError(f"the landing directory {landing} does not exist")
    say = progress or (lambda message: None)
    scope = select_entities(sources, entities)
    scan = discover(landing, scope, dt_from, dt_to)
    report = IngestReport(landing=str(landing), warnings=scan.warnings)
    touched: set[str] = set()
    with warehouse.connection(url, autocommit=True) as conn:
        audit.ensure_raw_tables(conn)
        loaded = audit.loaded_fingerprints(conn, scope)
        for part in scan.partitions:
            if not part.complete:
                result = PartitionResult(
                    part.source, part.entity.name, part.dt, "incomplete", files=len(part.files)
                )
                report.partitions.append(result)
                say(result.describe())
                continue
            try:
                signature = stat_signature(part)
                known = loaded.get(part.key)
                if known is not None and not rehash and known[1] == signature:
                    report.partitions.append(_unchanged(part))
                    continue
                checksums = {p.name: sha256_of(p) for p in part.files}
                fp = fingerprint(checksums)
                if known is not None and known[0] == fp:
                    audit.record_stat_signature(conn, part.key, fp, signature)
                    report.partitions.append(_unchanged(part))
                    continue
                say(f"{part}: loading {len(part.files)} file(s)")
                result = load_partition(conn, landing, part, fp, checksums, signature)
            except Exception as exc:  # one partition failing must not stop the others
                log.exception("loading %s failed", part)
                result = PartitionResult(
                    part.source,
                    part.entity.name,
                    part.dt,
                    "failed",
                    files=len(part.files),
                    error=f"{type(exc).__name__}: {exc}",
                )
            if result.action in ("loaded", "replaced"):
                touched.add(part.entity.qualified_table)
            report.partitions.append(result)
            say(result.describe())
        audit.sync_pending(
            conn,
            scope,
            [p.key for p in scan.partitions if not p.complete],
            dt_from,
            dt_to,
        )
        for table in sorted(touched):
            conn.execute(f"analyze {table}")
    report.seconds = time.monotonic() - started
    return report


def _unchanged(part) -> PartitionResult:
    return PartitionResult(
        part.source, part.entity.name, part.dt, "unchanged", files=len(part.files)
    )
