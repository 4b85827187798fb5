"""Finding partitions in the landing zone: ``<root>/<source>/<entity>/dt=<YYYY-MM-DD>/``.

Anything that does not fit the layout is ignored with a warning, never an error: an unknown
source or entity folder, a folder not named ``dt=YYYY-MM-DD``, a stray file outside a
partition.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePath

from exops.contract import ENTITIES, ENTITY_BY_PATH, LANDING_CLOCK, SOURCES, Entity

from .files import LandingRoot, NotRegularFile, display_name, name_problem, not_regular_reason

log = logging.getLogger(__name__)

SUCCESS_MARKER = "_SUCCESS"
_DT_FOLDER = re.compile(r"dt=([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII)
_EXTENSIONS = {"csv": (".csv", ".csv.gz"), "jsonl": (".jsonl", ".jsonl.gz")}


@dataclass(frozen=True)
class Entry:
    """A directory entry where a data file belongs that is never opened, and why."""

    name: str  # as shown (bytes that are not UTF-8 escaped), the key in the fingerprint
    rel: str  # its path relative to the landing root, as shown
    reason: str
    path: Path  # to lstat it, never to open it

    @property
    def checksum(self) -> str:
        """What stands for its sha256 in the partition's fingerprint."""
        return f"not read: {self.reason}"


@dataclass(frozen=True)
class Partition:
    entity: Entity
    dt: date
    path: Path
    files: tuple[Path, ...]  # the regular files but _SUCCESS, sorted by name
    complete: bool  # _SUCCESS exists
    rejected: tuple[Entry, ...] = ()  # entries never opened: not regular files, bad names

    @property
    def source(self) -> str:
        return self.entity.source

    @property
    def key(self) -> tuple[str, str, date]:
        return (self.entity.source, self.entity.name, self.dt)

    @property
    def entries(self) -> int:
        return len(self.files) + len(self.rejected)

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
    """The partitions under ``landing`` (a resolved path). Every entry is lstat'ed, never
    followed: a symlinked source, entity or partition folder is not walked into, and an
    entry of a partition that is not a regular file is recorded as rejected, never opened."""
    scan = Scan(scope=scope)
    in_scope = {(e.source, e.name): e for e in scope}
    sources = {e.source for e in scope}
    everything = len(scope) == len(ENTITIES)
    for source_dir in _entries(landing):
        if source_dir.name not in SOURCES:
            if everything and source_dir.name not in EXOPS_FILES:
                scan.warn(f"ignored {_rel(source_dir, landing)}: not a source folder")
            continue
        if source_dir.name not in sources:
            continue
        if not source_dir.is_dir(follow_symlinks=False):
            scan.warn(f"ignored {_rel(source_dir, landing)}: {_not_a_folder(source_dir)}")
            continue
        for entity_dir in _entries(Path(source_dir.path)):
            ent = in_scope.get((source_dir.name, entity_dir.name))
            if ent is None:
                if (source_dir.name, entity_dir.name) not in ENTITY_BY_PATH:
                    scan.warn(
                        f"ignored {_rel(entity_dir, landing)}: not an entity of "
                        f"source {source_dir.name}"
                    )
                continue
            if not entity_dir.is_dir(follow_symlinks=False):
                scan.warn(f"ignored {_rel(entity_dir, landing)}: {_not_a_folder(entity_dir)}")
                continue
            for dt_dir in _entries(Path(entity_dir.path)):
                dt = _partition_date(dt_dir.name)
                if dt is None or not (dt_dir.is_dir() or dt_dir.is_symlink()):
                    scan.warn(
                        f"ignored {_rel(dt_dir, landing)}: not a partition folder "
                        "named dt=YYYY-MM-DD with a valid date"
                    )
                    continue
                if (dt_from and dt < dt_from) or (dt_to and dt > dt_to):
                    continue
                path = Path(dt_dir.path)
                if dt_dir.is_symlink():
                    # recorded as a delivery whose only entry is rejected: never walked into
                    entry = Entry(
                        display_name(dt_dir.name),
                        _rel(dt_dir, landing),
                        not_regular_reason(stat.S_IFLNK),
                        path,
                    )
                    scan.partitions.append(Partition(ent, dt, path, (), True, (entry,)))
                    continue
                scan.partitions.append(_partition(ent, dt, path, landing, scan))
    return scan


EXOPS_FILES = frozenset({LANDING_CLOCK})  # written at the root by exops itself


def _entries(path: Path) -> list[os.DirEntry[str]]:
    with os.scandir(path) as it:
        return sorted(it, key=lambda e: e.name)


def _not_a_folder(entry: os.DirEntry[str]) -> str:
    if entry.is_symlink():
        return "a symbolic link where a folder belongs, never followed"
    return "a file where a folder belongs"


def _partition(ent: Entity, dt: date, path: Path, landing: Path, scan: Scan) -> Partition:
    files: list[Path] = []
    rejected: list[Entry] = []
    complete = False
    for item in _entries(path):
        try:
            mode = item.stat(follow_symlinks=False).st_mode
        except OSError:
            continue  # gone since the folder was listed
        if item.name == SUCCESS_MARKER:
            complete = stat.S_ISREG(mode)
            if not complete:
                scan.warn(f"ignored {_rel(item, landing)}: {not_regular_reason(mode)}")
        elif stat.S_ISDIR(mode):
            scan.warn(f"ignored {_rel(item, landing)}: a folder inside a partition")
        elif not stat.S_ISREG(mode):
            reason = not_regular_reason(mode)
            rejected.append(Entry(display_name(item.name), _rel(item, landing), reason, Path(item)))
        elif (problem := name_problem(item.name)) is not None:
            rejected.append(
                Entry(display_name(item.name), _rel(item, landing), problem, Path(item))
            )
        else:
            files.append(Path(item.path))
    return Partition(ent, dt, path, tuple(files), complete, tuple(rejected))


def _partition_date(name: str) -> date | None:
    m = _DT_FOLDER.fullmatch(name)
    if m is None:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def _rel(path: Path | os.DirEntry[str], landing: Path) -> str:
    """A path relative to the landing root as shown (non-UTF-8 bytes escaped)."""
    return display_name(Path(path).relative_to(landing).as_posix())


def file_format_problem(path: PurePath, entity: Entity) -> str | None:
    """Why a file in a partition is not a data file this entity's source can deliver."""
    expected = _EXTENSIONS[entity.file_format]
    if path.name.lower().endswith(expected):
        return None
    suffix = "".join(path.suffixes[-2:]) or "(none)"
    return f"unexpected file type {suffix}: {entity.source} files are {' or '.join(expected)}"


def checksums_of(root: LandingRoot, part: Partition) -> dict[str, str]:
    """Each entry's sha256 by name, read beneath the landing root (a rejected entry, or a
    file that vanished or cannot be opened, stands in with a marker and is never read)."""
    out = {e.name: e.checksum for e in part.rejected}
    for path in part.files:
        try:
            out[path.name] = root.sha256(path.relative_to(root.path))
        except OSError as exc:
            out[path.name] = f"not read: {exc.strerror or exc}"
        except NotRegularFile as exc:
            out[path.name] = f"not read: {exc.reason}"
    return out


def stat_signature(part: Partition) -> str:
    """What the file system says of a partition's entries and _SUCCESS (lstat, never
    following a link): name, size, inode, modification and change times. A re-delivery
    replaces files and rewrites _SUCCESS, which changes this; an unchanged signature lets a
    run skip checksumming the partition again.
    """
    digest = hashlib.sha256()
    for path in (*part.files, *(e.path for e in part.rejected), part.path / SUCCESS_MARKER):
        try:
            st = os.lstat(path)
        except OSError:
            return "unreadable"
        name = display_name(path.name)
        digest.update(
            f"{name}\t{st.st_size}\t{st.st_ino}\t{st.st_mtime_ns}\t{st.st_ctime_ns}\n".encode()
        )
    return digest.hexdigest()


def fingerprint(checksums: dict[str, str]) -> str:
    """One checksum for a partition's delivery: its file names and each file's sha256."""
    digest = hashlib.sha256()
    for name in sorted(checksums):
        digest.update(f"{name}\t{checksums[name]}\n".encode())
    return digest.hexdigest()
