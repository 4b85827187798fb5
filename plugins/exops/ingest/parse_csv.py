"""CSV landing files (RFC 4180) -> COPY text lines plus quarantined rows.

Speed matters here (``exchange/trades`` is the biggest entity). The file is read in blocks
of lines. A block without quotes, tabs, backslashes or NULs (the usual case) needs no CSV
parser: replacing its commas by tabs gives COPY's text format, and one compiled regular
expression per line accepts exactly the rows COPY can take unchanged (valid values, right
number of fields). Other blocks go through the :mod:`csv` module record by record. Only rows
the regular expression refuses go through the per-field checkers, which either normalise
the values (escapes, fractions beyond the microsecond) or name every problem.

Line numbers are physical: the header is line 1, a quoted field with line breaks makes a
record span several lines, and a record is numbered by its first line.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import TextIO

from exops.contract import Column, Entity

from .files import (
    FileOutcome,
    LandingFile,
    Unreadable,
    is_gzip,
    open_text,
    opened,
    reading,
    strip_newline,
)
from .quarantine import Quarantine
from .rules import RowRule, row_rules
from .values import (
    COUNTRY_RE,
    DATE_RE,
    DECIMAL_RE,
    PLAIN_TEXT_RE,
    TIMESTAMP_RE,
    Invalid,
    csv_converter,
)

BLOCK_CHARS = 1 << 16  # characters of lines read (and written to COPY) at a time
MAX_FIELD = 1 << 28  # the csv module's default limit (128 KiB) is too small for free text
_UNTERMINATED = "unexpected end of data"
_SPECIAL = ('"', "\t", "\\", "\x00")  # characters that rule a block out of the fast path


class _RejectFile(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def fast_pattern(column: Column, *, clean: bool = False) -> str:
    """A regex for the values of ``column`` that COPY takes as they are.

    ``clean``: the values come from a block known to hold no tab, line break, backslash or
    NUL, so free text needs no character check (a cheaper pattern).
    """
    if column.type == "timestamp":
        p = TIMESTAMP_RE
    elif column.type == "date":
        p = DATE_RE
    elif column.type == "decimal":
        p = DECIMAL_RE
    elif column.type == "country":
        p = COUNTRY_RE
    elif column.type == "enum":
        p = "|".join(re.escape(v) for v in column.enum)
    elif column.type == "text":
        char = "[^\t]" if clean else PLAIN_TEXT_RE
        return f"{char}*" if column.nullable else f"{char}+"
    else:  # integers and lists: always checked one by one
        return "(?!)"
    return f"(?:{p})?" if column.nullable else f"(?:{p})"


def row_regex(columns: Sequence[Column], *, clean: bool = False) -> re.Pattern[str]:
    return re.compile("\t".join(fast_pattern(c, clean=clean) for c in columns), re.ASCII)


def block_regex(columns: Sequence[Column]) -> re.Pattern[str]:
    """A regex for a whole clean block of rows (CRLF or LF line ends, the last one optional).

    One call per block instead of one per row; atomic groups keep a failing block from
    backtracking through the rows before it (it is then checked row by row). Free text is
    ``[^\t]``, which is quicker than also excluding line ends but can run over one: a match
    counts only when the block has exactly ``columns - 1`` tabs per line (see _fast_block).
    """
    row = row_regex(columns, clean=True).pattern
    return re.compile(f"(?>(?>{row})\r?\n)*+(?>{row})?", re.ASCII)


def parse_csv(
    source: LandingFile | Path,
    entity: Entity,
    *,
    suffix: str,
    write: Callable[[str], object],
    gz: bool | None = None,
    quarantine: Quarantine | None = None,
) -> FileOutcome:
    """Parse one CSV file, passing COPY text lines to ``write`` in batches.

    Each line holds the contract columns in contract order, then ``_line`` and ``suffix``
    (the tab-separated constant meta columns and a newline). When the outcome is
    ``rejected`` the caller must discard whatever was written. Bad rows go to
    ``quarantine`` (kept in the outcome's ``quarantined`` list when none is given).
    """
    if csv.field_size_limit() < MAX_FIELD:
        csv.field_size_limit(MAX_FIELD)
    gz = is_gzip(source) if gz is None else gz
    bad = quarantine or Quarantine(entity)
    try:
        with opened(source) as f:
            outcome = _parse_file(f, gz, entity, suffix, write, bad)
            outcome.sha256, outcome.file_bytes = f.sha256(), f.size
    except Unreadable as exc:  # not a regular file
        return FileOutcome("rejected", None, error=exc.reason)
    outcome.quarantined, outcome.rows_quarantined = list(bad.rows), bad.count
    return outcome


def _parse_file(
    f: LandingFile,
    gz: bool,
    entity: Entity,
    suffix: str,
    write: Callable[[str], object],
    bad: Quarantine,
) -> FileOutcome:
    try:
        with open_text(f, gz) as text, reading(f, gz):
            return _CsvFile(text, entity, suffix, write, bad, reject=None).parse()
    except Unreadable as exc:
        bad.reset()
        return FileOutcome("rejected", None, error=exc.reason)
    except _RejectFile as exc:
        # count the rows again, all quarantined (rows may already have been written)
        bad.reset()
        try:
            with open_text(f, gz) as text, reading(f, gz):
                return _CsvFile(text, entity, suffix, _no_write, bad, reject=exc.reason).parse()
        except Unreadable as again:  # the file changed under us
            bad.reset()
            return FileOutcome("rejected", None, error=again.reason)


def _no_write(text: str) -> None:
    raise AssertionError("a rejected file writes nothing")


class _CsvFile:
    def __init__(
        self,
        text: TextIO,
        entity: Entity,
        suffix: str,
        write: Callable[[str], object],
        bad: Quarantine,
        reject: str | None,
    ) -> None:
        self.text = text
        self.suffix = suffix
        self.write = write
        self.reject = reject  # the file is known bad: count and quarantine every row
        self.names = entity.column_names
        self.columns = entity.columns
        self.converters = [csv_converter(c) for c in entity.columns]
        self.rules: tuple[RowRule, ...] = row_rules(entity)
        self.fast = row_regex(entity.columns).fullmatch
        self.fast_clean = row_regex(entity.columns, clean=True).fullmatch
        self.fast_block = block_regex(entity.columns).fullmatch
        self.tabs = len(entity.columns) - 1  # per line of a block the block regex accepts
        self.width = 0  # fields in the header
        self.pick: Callable[[Sequence[str]], Sequence[str]] | None = None  # header -> contract
        self.lineno = 0  # physical lines consumed so far
        self.rows_in = 0
        self.bad = bad

    # ---- driver

    def parse(self) -> FileOutcome:
        header_line = self._read_header()
        if header_line == 0:
            if self.reject is not None:
                return FileOutcome("rejected", 0, 0, error=self.reject)
            return FileOutcome("empty", 0)
        while lines := self.text.readlines(BLOCK_CHARS):
            if self.reject is None and self.pick is None and not self.rules:
                self._fast_block(lines)
            else:
                self._records(lines)
        if self.reject is not None:
            return FileOutcome("rejected", self.rows_in, 0, error=self.reject)
        loaded = self.rows_in - self.bad.count
        return FileOutcome("loaded" if self.rows_in else "empty", self.rows_in, loaded)

    def _read_header(self) -> int:
        """Read up to the header record; its line number, 0 when the file has no records."""
        for start, row, _raw, error in self._csv_records(iter(self.text.readline, ""), None):
            if error is not None:
                if self.reject is None:
                    raise _RejectFile(f"the header is not valid CSV: {error}")
                return start  # the broken header is not a row; the rest count as rows
            if _is_blank(row):
                continue
            header = [name.strip() for name in row]
            problem = _header_problem(header, self.names, start)
            if problem is not None:
                if self.reject is None:
                    raise _RejectFile(problem)
                return start
            self.width = len(header)
            order = [header.index(n) for n in self.names]
            if order != list(range(self.width)):
                self.pick = itemgetter(*order)
            return start
        return 0

    # ---- the fast path: a block of lines without quotes

    def _fast_block(self, lines: list[str]) -> None:
        block = "".join(lines)
        if any(c in block for c in _SPECIAL):
            self._records(lines)
            return
        end = "\n"
        if "\r" in block:
            crlf = block.count("\r\n")
            if block.count("\r") != crlf:
                self._records(lines)
                return
            if crlf == block.count("\n"):
                end = "\r\n"  # every line ends CRLF (csv.writer's default): split on it as is
            else:
                block = block.replace("\r\n", "\n")
        tabbed = block.replace(",", "\t")
        rows = tabbed.split(end)
        if rows[-1] == "":
            rows.pop()  # the block ends with a line break
        first = self.lineno + 1
        self.lineno += len(lines)
        self.rows_in += len(rows)
        fast, suffix = self.fast_clean, self.suffix
        # the usual case: one regex call checks the whole block, then no Python-level loop
        if self._block_ok(tabbed, len(rows)) or all(map(fast, rows)):
            out = [f"{r}\t{n}{suffix}" for n, r in enumerate(rows, first)]
        else:
            slow = self._slow_line
            out = [
                f"{r}\t{n}{suffix}" if fast(r) else slow(r, n) for n, r in enumerate(rows, first)
            ]
        self.write("".join(out))

    def _block_ok(self, tabbed: str, rows: int) -> bool:
        """Whether every line of the block is a row COPY takes as it is.

        The tab count proves the regex matched line by line: a match in which free text ran
        over a line end would cover fewer lines than there are, with fewer tabs.
        """
        return (
            self.tabs > 0
            and self.fast_block(tabbed) is not None
            and tabbed.count("\t") == rows * self.tabs
        )

    def _slow_line(self, row: str, number: int) -> str:
        """A line of a fast block the regex refused: COPY text, or '' (blank or quarantined)."""
        raw = row.replace("\t", ",")  # the block had no tabs: this is the line as written
        if not raw.strip():
            self.rows_in -= 1
            return ""
        return self._row(row.split("\t"), number, raw)

    # ---- the general path: the csv module, record by record

    def _records(self, lines: list[str]) -> None:
        """Every record starting in ``lines``; a quoted field may run on into later lines."""
        end = self.lineno + len(lines)
        source = chain(lines, iter(self.text.readline, ""))
        out: list[str] = []
        for start, row, raw, error in self._csv_records(source, end):
            if error is not None:
                self.rows_in += 1
                if self.reject is not None:
                    self._quarantine(start, None, f"file rejected: {self.reject}", raw)
                elif error.startswith("the quoted field"):
                    raise _RejectFile(f"not valid CSV: {error}")
                else:
                    self._quarantine(start, None, f"not valid CSV: {error}", raw)
                continue
            if _is_blank(row):
                continue
            self.rows_in += 1
            if self.reject is not None:
                self._quarantine(start, None, f"file rejected: {self.reject}", raw)
                continue
            line = self._row(row, start, raw)
            if line:
                out.append(line)
        if out:
            self.write("".join(out))

    def _csv_records(
        self, source: Iterable[str], end: int | None
    ) -> Iterator[tuple[int, list[str], str, str | None]]:
        """(first line, fields, raw text, CSV error) per record, until line ``end``."""
        consumed: list[str] = []

        def tracked() -> Iterator[str]:
            for line in source:
                consumed.append(line)
                yield line

        reader = csv.reader(tracked(), strict=True)
        while end is None or self.lineno < end:
            consumed.clear()
            start = self.lineno + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                self.lineno += len(consumed)
                yield start, [], strip_newline("".join(consumed)), _csv_problem(exc, start)
                if str(exc) == _UNTERMINATED:
                    return
                continue
            self.lineno += len(consumed)
            yield start, row, strip_newline("".join(consumed)), None

    # ---- one row

    def _row(self, row: Sequence[str], number: int, raw: str) -> str:
        """A record's COPY text line, or '' when it was quarantined."""
        if len(row) != self.width:
            self._quarantine(
                number, None, f"row has {len(row)} fields, the header has {self.width}", raw
            )
            return ""
        fields = row if self.pick is None else self.pick(row)
        body = "\t".join(fields)
        if self.fast(body) is None or self.rules:
            try:
                body = self._checked(fields)
            except Invalid as exc:
                self._quarantine(number, exc.column, exc.reason, raw)
                return ""
        return f"{body}\t{number}{self.suffix}"

    def _checked(self, fields: Sequence[str]) -> str:
        values: list[str] = []
        problems: list[Invalid] = []
        for convert, value in zip(self.converters, fields, strict=True):
            try:
                values.append(convert(value))
            except Invalid as exc:
                problems.append(exc)
        if problems:
            raise Invalid("; ".join(p.reason for p in problems), problems[0].column)
        for rule in self.rules:
            rule(dict(zip(self.names, fields, strict=True)))
        return "\t".join(values)

    def _quarantine(self, line: int, column: str | None, reason: str, raw: str) -> None:
        self.bad.add(line, column, reason, raw)


def _is_blank(row: list[str]) -> bool:
    return not row or (len(row) == 1 and not row[0].strip())


def _csv_problem(exc: csv.Error, start: int) -> str:
    message = str(exc)
    if message == _UNTERMINATED:
        return f"the quoted field starting on line {start} is never closed"
    if message.startswith("new-line character"):
        return f"line {start}: a carriage return inside an unquoted field"
    if "expected after" in message:
        return f"line {start}: {message} (a quote inside a quoted field must be doubled)"
    return f"line {start}: {message}"


def _header_problem(header: list[str], names: Sequence[str], line: int) -> str | None:
    missing = [n for n in names if n not in header]
    if missing:
        listed = ", ".join(f"'{n}'" for n in missing)
        plural = "s" if len(missing) > 1 else ""
        return f"missing required column{plural} {listed} in the header (line {line})"
    twice = [n for n in names if header.count(n) > 1]
    if twice:
        return f"column '{twice[0]}' appears more than once in the header (line {line})"
    return None
