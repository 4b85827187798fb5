"""Finding partitions in the landing zone: ``<root>/<source>/<entity>/dt=<YYYY-MM-DD>/``.

Anything that does not fit the layout is ignored with a warning, never an error: an unknown
source or entity folder, a folder not named ``dt=YYYY-MM-DD``, a stray file outside a
partition.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from exops.contract import ENTITIES, ENTITY_BY_PATH, SOURCES, Entity

log = logging.getLogger(__name__)

SUCCESS_MARKER = "_SUCCESS"
_DT_FOLDER = re.compile(r"dt=([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII)
_EXTENSIONS = {"csv": (".csv", ".csv.gz"), "jsonl": (".jsonl", ".jsonl.gz")}


@dataclass(frozen=True)
class Partition:
    entity: Entity
    dt: date
    path: Path
    files: tuple[Path, ...]  # every file but _SUCCESS, sorted by name
    complete: bool  # _SUCCESS exists

    @property
    def source(self) -> str:
        return self.entity.source

    @property
    def key(self) -> tuple[str, str, date]:
        return (self.entity.source, self.entity.name, self.dt)

    def __str__(self) -> str:
        return f"{self.entity.source}/{self.entity.name} dt={self.dt.isoformat()}"


@dataclass
class Scan:
    partitions: list[Partition] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    scope: list[Entity] = field(default_factory=list)  # the entities looked at

    def warn(self, message: str) -> None:
        log.warning(message)
        self.warnings.append(message)


def select_entities(sources: Iterable[str] | None, entities: Iterable[str] | None) -> list[Entity]:
    """The contract entities a run covers; names may be ``trades`` or ``exchange/trades``."""
    wanted_sources = set(SOURCES) if sources is None else set(sources)
    unknown = wanted_sources - set(SOURCES)
    if unknown:
        raise ValueError(
            f"unknown source(s) {', '.join(sorted(unknown))}; known: {', '.join(SOURCES)}"
        )
    chosen = [e for e in ENTITIES if e.source in wanted_sources]
    if entities is not None:
        names = set(entities)
        known = {e.name for e in ENTITIES} | {f"{e.source}/{e.name}" for e in ENTITIES}
        if names - known:
            raise ValueError(
                f"unknown entity(ies) {', '.join(sorted(names - known))}; "
                f"known: {', '.join(e.name for e in ENTITIES)}"
            )
        chosen = [e for e in chosen if e.name in names or f"{e.source}/{e.name}" in names]
    return chosen


def discover(
    landing: Path,
    scope: list[Entity],
    dt_from: date | None = None,
    dt_to: date | None = None,
) -> Scan:
    scan = Scan(scope=scope)
    in_scope = {(e.source, e.name): e for e in scope}
    sources = {e.source for e in scope}
    everything = len(scope) == len(ENTITIES)
    for source_dir in sorted(landing.iterdir()):
        if source_dir.name not in SOURCES:
            if everything:
                scan.warn(f"ignored {_rel(source_dir, landing)}: not a source folder")
            continue
        if source_dir.name not in sources:
            continue
        if not source_dir.is_dir():
            scan.warn(f"ignored {_rel(source_dir, landing)}: a file where a folder belongs")
            continue
        for entity_dir in sorted(source_dir.iterdir()):
            ent = in_scope.get((source_dir.name, entity_dir.name))
            if ent is None:
                if (source_dir.name, entity_dir.name) not in ENTITY_BY_PATH:
                    scan.warn(
                        f"ignored {_rel(entity_dir, landing)}: not an entity of "
                        f"source {source_dir.name}"
                    )
                continue
            if not entity_dir.is_dir():
                scan.warn(f"ignored {_rel(entity_dir, landing)}: a file where a folder belongs")
                continue
            for dt_dir in sorted(entity_dir.iterdir()):
                dt = _partition_date(dt_dir)
                if dt is None or not dt_dir.is_dir():
                    scan.warn(
                        f"ignored {_rel(dt_dir, landing)}: not a partition folder "
                        "named dt=YYYY-MM-DD with a valid date"
                    )
                    continue
                if (dt_from and dt < dt_from) or (dt_to and dt > dt_to):
                    continue
                scan.partitions.append(_partition(ent, dt, dt_dir, landing, scan))
    return scan


def _partition(ent: Entity, dt: date, path: Path, landing: Path, scan: Scan) -> Partition:
    files: list[Path] = []
    complete = False
    for item in sorted(path.iterdir()):
        if item.name == SUCCESS_MARKER:
            complete = item.is_file()
        elif item.is_dir():
            scan.warn(f"ignored {_rel(item, landing)}: a folder inside a partition")
        else:
            files.append(item)
    return Partition(ent, dt, path, tuple(files), complete)


def _partition_date(path: Path) -> date | None:
    m = _DT_FOLDER.fullmatch(path.name)
    if m is None:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def _rel(path: Path, landing: Path) -> str:
    return path.relative_to(landing).as_posix()


def file_format_problem(path: Path, entity: Entity) -> str | None:
    """Why a file in a partition is not a data file this entity's source can deliver."""
    expected = _EXTENSIONS[entity.file_format]
    if path.name.lower().endswith(expected):
        return None
    suffix = "".join(path.suffixes[-2:]) or "(none)"
    return f"unexpected file type {suffix}: {entity.source} files are {' or '.join(expected)}"


UNREADABLE = "unreadable"


def sha256_of(path: Path) -> str:
    """The file's sha256, or ``UNREADABLE`` when it cannot be read (vanished, broken link):
    such a file is then rejected with its reason instead of failing the partition."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return UNREADABLE
    return digest.hexdigest()


def stat_signature(part: Partition) -> str:
    """What the file system says of a partition's files and _SUCCESS: name, size, inode,
    modification and change times. A re-delivery replaces files and rewrites _SUCCESS, which
    changes this; an unchanged signature lets a run skip checksumming the partition again.
    """
    digest = hashlib.sha256()
    for path in (*part.files, part.path / SUCCESS_MARKER):
        try:
            st = path.stat()
        except OSError:
            return UNREADABLE
        digest.update(
            f"{path.name}\t{st.st_size}\t{st.st_ino}\t{st.st_mtime_ns}\t{st.st_ctime_ns}\n".encode()
        )
    return digest.hexdigest()


def fingerprint(checksums: dict[str, str]) -> str:
    """One checksum for a partition's delivery: its file names and each file's sha256."""
    digest = hashlib.sha256()
    for name in sorted(checksums):
        digest.update(f"{name}\t{checksums[name]}\n".encode())
    return digest.hexdigest()
