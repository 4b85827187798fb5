"""Opening landing files: gzip or plain, strict UTF-8 (a leading BOM tolerated), and what a
file's parse produced (:class:`FileOutcome`)."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TextIO

FileStatus = Literal["loaded", "empty", "rejected"]

# what reading a damaged .gz raises: bad magic / CRC (BadGzipFile is an OSError), truncation
GZIP_ERRORS = (OSError, EOFError, zlib.error)
_CHUNK = 1 << 16


class Unreadable(Exception):
    """The file cannot be decoded at all (not UTF-8, corrupt gzip): rows cannot be counted."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class QuarantinedRow:
    line: int  # 1-based physical line of the row's first line
    column: str | None  # None when the whole row is wrong
    reason: str
    raw_text: str


@dataclass
class FileOutcome:
    status: FileStatus
    rows_in_file: int | None  # None when the rows cannot be counted
    rows_loaded: int = 0
    quarantined: list[QuarantinedRow] = field(default_factory=list)
    error: str | None = None  # why the file was rejected

    @property
    def rows_quarantined(self) -> int:
        return len(self.quarantined)


def is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


@contextmanager
def open_text(path: Path) -> Iterator[TextIO]:
    """The file's text, split into lines at LF only (each keeps its LF or CRLF ending).

    Decoding errors surface while iterating: wrap the iteration in :func:`reading`.
    """
    raw = gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")  # noqa: SIM115
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="\n")
    text._CHUNK_SIZE = _CHUNK  # type: ignore[attr-defined]  # fewer, larger decode calls
    try:
        yield text
    finally:
        text.close()


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """Turn decoding and decompression errors into :class:`Unreadable` with a clear reason."""
    try:
        yield
    except UnicodeDecodeError:
        raise Unreadable(locate_utf8_error(path)) from None
    except GZIP_ERRORS as exc:
        if is_gzip(path):
            raise Unreadable(f"corrupt or truncated gzip file: {exc}") from None
        raise Unreadable(f"cannot read the file: {exc}") from None


def locate_utf8_error(path: Path) -> str:
    """The reason for a file that is not UTF-8, naming the first bad line and byte."""
    try:
        raw = gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")  # noqa: SIM115
        with raw:
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
