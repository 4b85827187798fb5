"""Opening landing files safely: regular files beneath the landing root only, read once.

:class:`LandingRoot` resolves the landing root once and opens files relative to it, one path
component at a time with ``O_NOFOLLOW``: a symlink anywhere below the root (to a file, to a
``dt=`` folder) is refused, never followed, so nothing outside the root is ever read. The file
itself is opened with ``O_NONBLOCK`` (a FIFO swapped in after discovery cannot hang the run)
and checked with ``fstat`` before a byte is read. :class:`LandingFile` hashes every byte as
the parser reads it, so the sha256 recorded is that of the exact bytes parsed.

Also: gzip or plain, strict UTF-8 (a leading BOM tolerated), and what a file's parse produced
(:class:`FileOutcome`).
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import os
import stat
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import BinaryIO, Literal, TextIO

FileStatus = Literal["loaded", "empty", "rejected"]

# what reading a damaged .gz raises: bad magic / CRC (BadGzipFile is an OSError), truncation
GZIP_ERRORS = (OSError, EOFError, zlib.error)
_CHUNK = 1 << 16
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
NOT_REGULAR = "not a regular file"


class Unreadable(Exception):
    """The file cannot be decoded at all (not UTF-8, corrupt gzip): rows cannot be counted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotRegularFile(Unreadable):
    """A symlink, FIFO, socket, device or folder where a data file belongs: never read."""


def entry_kind(mode: int) -> str:
    """What a non-regular directory entry is, from its lstat mode."""
    if stat.S_ISLNK(mode):
        return "a symbolic link, never followed"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), never opened"
    if stat.S_ISSOCK(mode):
        return "a socket, never opened"
    if stat.S_ISCHR(mode):
        return "a character device, never opened"
    if stat.S_ISBLK(mode):
        return "a block device, never opened"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "an unknown kind of entry, never opened"


def not_regular_reason(mode: int) -> str:
    return f"{NOT_REGULAR}: {entry_kind(mode)}"


def display_name(name: str) -> str:
    """A file name as text PostgreSQL and a terminal can take: bytes that are not UTF-8
    (kept by ``os.fsdecode`` as surrogates) are shown as escapes, e.g. ``\\xff``."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def name_problem(name: str) -> str | None:
    """Why an entry's name cannot be a landing file name (None when it is valid UTF-8)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return f"file name is not valid UTF-8: {display_name(name)!r}; never opened"
    return None


class LandingFile(io.RawIOBase):
    """An open regular landing file that hashes every byte read through it."""

    def __init__(self, fd: int, size: int) -> None:
        super().__init__()
        self._file = io.FileIO(fd, "rb", closefd=True)
        self.size = size  # from fstat when opened
        self._digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        n = self._file.readinto(buffer)
        if n:
            self._digest.update(memoryview(buffer)[:n])
        return n or 0

    def restart(self) -> None:
        """Read the file again from its first byte (and hash it again)."""
        self._file.seek(0)
        self._digest = hashlib.sha256()

    def sha256(self) -> str:
        """The sha256 of the file as read: what is left is read (and hashed) first."""
        while chunk := self._file.read(1 << 20):
            self._digest.update(chunk)
        return self._digest.hexdigest()

    def close(self) -> None:
        # the readers stacked on top (gzip, text) close this when they are done; the file
        # stays open for a rehash or a second pass until release()
        pass

    def release(self) -> None:
        self._file.close()
        super().close()


class LandingRoot:
    """The landing root, resolved once; files are opened beneath it and nowhere else."""

    def __init__(self, path: Path) -> None:
        self.path = Path(os.path.realpath(path))
        self._fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> LandingRoot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self, rel: PurePath) -> LandingFile:
        """Open ``rel`` (relative to the root) for reading; raise :class:`NotRegularFile` for
        anything but a regular file reached without following a symlink, OSError otherwise."""
        parts = rel.parts
        if not parts or rel.is_absolute() or ".." in parts:
            raise NotRegularFile(f"{NOT_REGULAR}: outside the landing root, never opened")
        opened: list[int] = []
        try:
            dir_fd = self._fd
            for part in parts[:-1]:
                dir_fd = os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
                opened.append(dir_fd)
            fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise NotRegularFile(not_regular_reason(stat.S_IFLNK)) from None
            raise
        finally:
            for d in opened:
                os.close(d)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise NotRegularFile(not_regular_reason(st.st_mode))
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return LandingFile(fd, st.st_size)

    def sha256(self, rel: PurePath) -> str:
        """The sha256 of one file beneath the root (NotRegularFile / OSError as :meth:`open`)."""
        f = self.open(rel)
        try:
            return f.sha256()
        finally:
            f.release()


@contextmanager
def opened(source: LandingFile | Path) -> Iterator[LandingFile]:
    """``source`` as a :class:`LandingFile`: a Path is opened as a landing root's file is."""
    if isinstance(source, LandingFile):
        yield source
        return
    path = Path(source)
    with LandingRoot(path.parent) as root:
        f = root.open(PurePath(path.name))
        try:
            yield f
        finally:
            f.release()


@dataclass(frozen=True)
class QuarantinedRow:
    line: int  # 1-based physical line of the row's first line
    column: str | None  # None when the whole row is wrong
    reason: str
    raw_text: str | None  # masked and capped; None past a file's first rows kept in full
    raw_sha256: str = ""  # of the whole raw line(s), before masking and capping


@dataclass
class FileOutcome:
    status: FileStatus
    rows_in_file: int | None  # None when the rows cannot be counted
    rows_loaded: int = 0
    quarantined: list[QuarantinedRow] = field(default_factory=list)  # kept when not streamed
    error: str | None = None  # why the file was rejected
    rows_quarantined: int = -1  # -1: len(quarantined)
    sha256: str | None = None  # of the bytes parsed
    file_bytes: int = 0

    def __post_init__(self) -> None:
        if self.rows_quarantined < 0:
            self.rows_quarantined = len(self.quarantined)

    @property
    def mostly_bad(self) -> bool:
        """More than half of the file's rows were quarantined."""
        return bool(self.rows_in_file) and self.rows_quarantined * 2 > self.rows_in_file


def is_gzip(path: PurePath | str) -> bool:
    return str(path).lower().endswith(".gz")


def open_binary(f: LandingFile, gz: bool) -> BinaryIO:
    """The file's bytes from its start, decompressed when ``gz``."""
    f.restart()
    if gz:
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    return io.BufferedReader(f, _CHUNK)  # type: ignore[return-value]


@contextmanager
def open_text(f: LandingFile, gz: bool) -> Iterator[TextIO]:
    """The file's text, split into lines at LF only (each keeps its LF or CRLF ending).

    Decoding errors surface while iterating: wrap the iteration in :func:`reading`.
    """
    text = io.TextIOWrapper(open_binary(f, gz), encoding="utf-8-sig", errors="strict", newline="\n")
    text._CHUNK_SIZE = _CHUNK  # type: ignore[attr-defined]  # fewer, larger decode calls
    try:
        yield text
    finally:
        text.close()


@contextmanager
def reading(f: LandingFile, gz: bool) -> Iterator[None]:
    """Turn decoding and decompression errors into :class:`Unreadable` with a clear reason."""
    try:
        yield
    except UnicodeDecodeError:
        raise Unreadable(locate_utf8_error(f, gz)) from None
    except GZIP_ERRORS as exc:
        if gz:
            raise Unreadable(f"corrupt or truncated gzip file: {exc}") from None
        raise Unreadable(f"cannot read the file: {exc}") from None


def locate_utf8_error(f: LandingFile, gz: bool) -> str:
    """The reason for a file that is not UTF-8, naming the first bad line and byte (the file
    is read again through the same descriptor, never reopened by name)."""
    try:
        with open_binary(f, gz) as raw:
            for number, line in enumerate(raw, 1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    bad = line[exc.start : exc.start + 1].hex()
                    return (
                        f"not valid UTF-8: line {number}, byte {exc.start + 1} of the line "
                        f"(0x{bad}): {exc.reason}"
                    )
    except GZIP_ERRORS as exc:
        return f"corrupt or truncated gzip file: {exc}"
    return "not valid UTF-8"


def strip_newline(line: str) -> str:
    if line.endswith("\r\n"):
        return line[:-2]
    if line.endswith("\n"):
        return line[:-1]
    return line
