"""Ingestion: landing-zone files -> ``raw.<source>_<entity>`` tables, with a load audit.

``ingest(landing)`` loads every complete partition not loaded yet and every re-delivered
one, each in its own transaction; bad rows go to ``audit.quarantine`` and bad files are
recorded as rejected in ``audit.loads`` (see :mod:`exops.ingest.audit` for the tables and
how audit reconciles with raw).
"""

from .audit import ensure_raw_tables
from .pipeline import ingest
from .report import FileResult, IngestError, IngestReport, PartitionResult

__all__ = [
    "FileResult",
    "IngestError",
    "IngestReport",
    "PartitionResult",
    "ensure_raw_tables",
    "ingest",
]
