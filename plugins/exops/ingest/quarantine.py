"""Where a file's bad rows go: counted, masked, capped and streamed, never piled up in memory.

A hostile or broken delivery can be a gigabyte of bad rows. Each one costs a bounded amount:
its raw text is kept for the file's first :data:`FULL_ROWS` bad rows only, masked (personal
fields, e-mail addresses, phone numbers) and cut to :data:`RAW_TEXT_BYTES`; every row keeps
its line, column, (masked, capped) reason and the sha256 of its whole raw text. Rows are
written as COPY text to a spool file that moves to disk past a few megabytes, and reach
``audit.quarantine`` in the load's transaction (:func:`exops.ingest.audit.record_file`).
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

from exops.contract import Entity
from exops.settings import load_settings

from .files import QuarantinedRow
from .values import MISSING, printable, show

RAW_TEXT_BYTES = 4096  # raw text kept per bad row
REASON_CHARS = 1000  # a reason is a few words per bad field; cap what a hostile row can add
FULL_ROWS = 1000  # bad rows per file that keep their raw text
SPOOL_BYTES = 4 << 20  # a file's quarantine moves to disk past this
MASK = "<masked>"


def retention_days() -> int:
    """EXOPS_QUARANTINE_RETENTION_DAYS: how long audit.quarantine keeps a bad row's details
    (a malformed value raises SettingError, a ValueError, naming it)."""
    return load_settings().quarantine_retention_days


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+[0-9][0-9 ().-]{5,}[0-9]")
# a JSON value, or what is left of a string or an array cut short by the cap
_JSON_VALUE = r"""("(?:[^"\\]|\\.)*(?:"|\\?$)|\[[^\]]*\]?|\{[^}]*\}?|[^,}\s]+)"""
EDGE = 512  # characters masked past the kept text, so a value there is masked whole
# the end of the window, back to a separator: at most an e-mail address's length
_LAST_TOKEN = re.compile(r"""[^\s,;:"'<>(){}\[\]]{0,320}\Z""")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_field(value: str | None) -> str:
    return "\\N" if value is None else printable(value).translate(_ESCAPES)


def cap(text: str, limit: int = RAW_TEXT_BYTES) -> str:
    """``text`` cut to ``limit`` UTF-8 bytes (at a character boundary), marked when cut."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    kept = data[:limit].decode("utf-8", "ignore")
    return f"{kept}... [{len(data):,} bytes, cut to {limit:,}]"


class Masker:
    """Masks an entity's personal fields, e-mail addresses and phone numbers in text."""

    def __init__(self, entity: Entity) -> None:
        self.personal = tuple(c.name for c in entity.columns if c.personal)
        keys = "|".join(re.escape(n) for n in self.personal)
        self._json_keys = (
            re.compile(rf'("(?:{keys})"\s*:\s*){_JSON_VALUE}') if self.personal else None
        )

    def text(self, text: str) -> str:
        if self._json_keys is not None:
            text = self._json_keys.sub(lambda m: f'{m[1]}"{MASK}"', text)
        return _PHONE.sub(MASK, _EMAIL.sub(MASK, text))

    def reason(self, reason: str, record: Any = None) -> str:
        """A reason with the values of the record's personal fields it quotes masked."""
        if isinstance(record, dict):
            for name in self.personal:
                value = record.get(name, MISSING)
                if value is not MISSING and value is not None:
                    reason = reason.replace(show(value), MASK)
        return self.text(reason)


class Quarantine:
    """The bad rows of one file. ``spool=False`` keeps them in :attr:`rows` (for tests and
    tools that parse a file alone); ``prefix`` is the tab-separated COPY text of the columns
    that precede ``line`` in ``audit.quarantine`` (load, source, entity, dt, file)."""

    def __init__(self, entity: Entity, *, spool: bool = False, prefix: str = "") -> None:
        self.mask = Masker(entity)
        self.count = 0
        self.rows: list[QuarantinedRow] = []
        self.prefix = prefix
        self._spool = (
            tempfile.SpooledTemporaryFile(SPOOL_BYTES, mode="w+", encoding="utf-8", newline="")
            if spool
            else None
        )

    def add(self, line: int, column: str | None, reason: str, raw: str, record: Any = None) -> None:
        self.count += 1
        digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()
        reason = cap(self.mask.reason(reason, record), REASON_CHARS)
        text = self._raw_text(raw) if self.count <= FULL_ROWS else None
        if self._spool is None:
            self.rows.append(QuarantinedRow(line, column, reason, text, digest))
            return
        self._spool.write(
            f"{self.prefix}{line}\t{_copy_field(column)}\t{_copy_field(reason)}"
            f"\t{_copy_field(text)}\t{digest}\n"
        )

    def _raw_text(self, raw: str) -> str:
        """The row's text as kept: masked, then capped. Only a window of a long row is
        masked (a regex over megabytes of one row would take minutes); the token the window
        cuts in half (part of an e-mail address, say) is dropped."""
        if len(raw) <= RAW_TEXT_BYTES + EDGE:
            return cap(self.mask.text(raw))
        kept = _LAST_TOKEN.sub("", self.mask.text(raw[: RAW_TEXT_BYTES + EDGE]))
        size = len(raw.encode("utf-8", "surrogatepass"))
        data = kept.encode("utf-8", "surrogatepass")[:RAW_TEXT_BYTES]
        return f"{data.decode('utf-8', 'ignore')}... [{size:,} bytes, cut to {RAW_TEXT_BYTES:,}]"

    def reset(self) -> None:
        """Forget every row (the file is parsed again from its start)."""
        self.count = 0
        self.rows.clear()
        if self._spool is not None:
            self._spool.seek(0)
            self._spool.truncate()

    def copy_chunks(self) -> Iterator[str]:
        """The spooled rows as COPY text, in chunks."""
        if self._spool is None:
            return
        self._spool.flush()
        self._spool.seek(0)
        while chunk := self._spool.read(1 << 16):
            yield chunk

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()


def copy_lines(rows: Iterable[QuarantinedRow], prefix: str) -> Iterator[str]:
    """Rows kept in memory as the COPY text lines a spool would hold."""
    for q in rows:
        yield (
            f"{prefix}{q.line}\t{_copy_field(q.column)}\t{_copy_field(q.reason)}"
            f"\t{_copy_field(q.raw_text)}\t{q.raw_sha256}\n"
        )
