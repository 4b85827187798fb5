"""JSON Lines landing files -> COPY text lines plus quarantined rows.

Numbers are kept as the text they were written in (:func:`values.json_loads`), so a decimal
such as ``0.1`` or ``1e5`` reaches ``numeric`` exactly and an integer column can tell ``1``
from ``1.0`` and ``"1"``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from exops.contract import Entity

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
from .rules import row_rules
from .values import MISSING, Invalid, json_converter, json_loads, kind

BATCH_ROWS = 2000


def parse_jsonl(
    source: LandingFile | Path,
    entity: Entity,
    *,
    suffix: str,
    write: Callable[[str], object],
    gz: bool | None = None,
    quarantine: Quarantine | None = None,
) -> FileOutcome:
    """Parse one JSON Lines file, passing COPY text lines to ``write`` in batches.

    Each line holds the contract columns in contract order, then ``_line`` and ``suffix``.
    When the outcome is ``rejected`` the caller must discard whatever was written. Bad rows
    go to ``quarantine`` (kept in the outcome's ``quarantined`` list when none is given).
    """
    gz = is_gzip(source) if gz is None else gz
    bad = quarantine or Quarantine(entity)
    try:
        with opened(source) as f:
            try:
                with open_text(f, gz) as text, reading(f, gz):
                    outcome = _parse(text, entity, suffix, write, bad)
            except Unreadable as exc:
                bad.reset()
                outcome = FileOutcome("rejected", None, error=exc.reason)
            outcome.sha256, outcome.file_bytes = f.sha256(), f.size
    except Unreadable as exc:  # not a regular file
        return FileOutcome("rejected", None, error=exc.reason)
    outcome.quarantined, outcome.rows_quarantined = list(bad.rows), bad.count
    return outcome


def _parse(
    text: TextIO, entity: Entity, suffix: str, write: Callable[[str], object], bad: Quarantine
) -> FileOutcome:
    getters = [(c.name, json_converter(c)) for c in entity.columns]
    rules = row_rules(entity)
    out: list[str] = []
    rows_in = loaded = 0
    first_error: str | None = None
    any_parsed = False

    for number, line in enumerate(text, 1):
        if not line or line.isspace():
            continue  # a blank line
        rows_in += 1
        try:
            obj = json_loads(line)
        except (ValueError, RecursionError) as exc:
            reason = _json_problem(exc)
            first_error = first_error or f"line {number}: {reason}"
            bad.add(number, None, reason, strip_newline(line))
            continue
        any_parsed = True
        if type(obj) is not dict:
            reason = f"not a JSON object (got {kind(obj)})"
            bad.add(number, None, reason, strip_newline(line))
            continue
        values: list[str] = []
        problems: list[Invalid] = []
        for name, convert in getters:
            try:
                values.append(convert(obj.get(name, MISSING)))
            except Invalid as exc:
                problems.append(exc)
        if not problems:
            try:
                for rule in rules:
                    rule(obj)
            except Invalid as exc:
                problems.append(exc)
        if problems:
            reason = "; ".join(p.reason for p in problems)
            bad.add(number, problems[0].column, reason, strip_newline(line), obj)
            continue
        values.append(str(number))
        out.append("\t".join(values) + suffix)
        loaded += 1
        if len(out) >= BATCH_ROWS:
            write("".join(out))
            out.clear()
    if out:
        write("".join(out))
    if rows_in and not any_parsed:
        return FileOutcome(
            "rejected",
            rows_in,
            0,
            error=f"not JSON Lines: no line is valid JSON (first error: {first_error})",
        )
    return FileOutcome("loaded" if rows_in else "empty", rows_in, loaded)


def _json_problem(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON: {exc.msg} at column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "invalid JSON: nested too deeply"
    return f"invalid JSON: {exc}"
