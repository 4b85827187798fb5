"""Value rules of the landing contract (SOURCES.md "Value formats" and "Settled details").

Every checker turns one landing value into the text PostgreSQL's COPY (text format) gets for
it, or raises :class:`Invalid` with the reason a user reads in ``audit.quarantine``. A value
a checker accepts must never make COPY fail, so checkers also enforce what PostgreSQL cannot
store (NUL characters, offsets beyond +-15:59, numerics with thousands of digits).

CSV values arrive as strings (an empty field is null); JSON values arrive as decoded by
:func:`json_loads`, which keeps numbers as their original text so decimals stay exact.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from exops.contract import Column

# COPY text format: null marker of the JSON path (the CSV path copies with null '').
COPY_NULL = "\\N"
MAX_DIGITS = 1000  # per side of the decimal point; far beyond any amount, far below numeric's limit


class Invalid(ValueError):
    """A value (or row) breaks the contract; ``reason`` is what the quarantine records."""

    def __init__(self, reason: str, column: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.column = column


class JsonInt(str):
    """An integer literal from a JSON line, kept as written."""


class JsonFloat(str):
    """A JSON number with a fraction or an exponent, kept as written (exact)."""


class JsonConstant(str):
    """``NaN``, ``Infinity`` or ``-Infinity``, which Python's json accepts."""


MISSING: Any = object()  # an absent JSON key


def json_loads(line: str) -> Any:
    return json.loads(line, parse_int=JsonInt, parse_float=JsonFloat, parse_constant=JsonConstant)


# ---- regular expressions: always compiled with re.ASCII (else \d accepts Arabic-Indic digits)

_YEAR = "(?!0000)\\d{4}"
_MONTH_DAY = (
    "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\\d|3[01])"
    "|(?:0[469]|11)-(?:0[1-9]|[12]\\d|30)"
    "|02-(?:0[1-9]|1\\d|2[0-8]))"
)
_LEAP_DAY = "(?:\\d{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)-02-29"
# a valid calendar date, so the fast path needs no datetime() call
DATE_RE = f"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_DAY})"
# a timestamp COPY takes as is: valid date and time, at most 6 fraction digits, offset <= 15:59
TIMESTAMP_RE = (
    f"{DATE_RE}T(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d{{1,6}})?"
    "(?:Z|[+-](?:0\\d|1[0-5]):[0-5]\\d)"
)
DECIMAL_RE = f"[+-]?\\d{{1,{MAX_DIGITS}}}(?:\\.\\d{{1,{MAX_DIGITS}}})?"
COUNTRY_RE = "[A-Z]{2}"
# text COPY takes without escaping; anything else goes through the slow path
PLAIN_TEXT_RE = "[^\\t\\n\\r\\\\\\x00]"

_TIMESTAMP_SHAPE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})",
    re.ASCII,
)
_DATE_SHAPE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII)
_DECIMAL_SHAPE = re.compile(r"[+-]?([0-9]+)(?:\.([0-9]+))?", re.ASCII)
_COUNTRY = re.compile(COUNTRY_RE, re.ASCII)
_INTEGER_SHAPE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

TIMESTAMP_FORMAT = "YYYY-MM-DDTHH:MM:SS[.fraction] followed by Z or +-HH:MM"


def show(value: Any) -> str:
    """A value as a reason quotes it: strings in single quotes, JSON values as JSON."""
    if value is MISSING or value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if type(value) is str:
        text = value if len(value) <= 60 else value[:57] + "..."
        return "'" + printable(text) + "'"
    if isinstance(value, str):  # JsonInt / JsonFloat / JsonConstant: the literal
        return value if len(value) <= 60 else value[:57] + "..."
    text = json.dumps(value, ensure_ascii=False, default=str)
    return printable(text if len(text) <= 60 else text[:57] + "...")


def printable(text: str) -> str:
    """Text PostgreSQL can store: no NUL, no lone surrogates (both can come from JSON)."""
    if "\x00" in text:
        text = text.replace("\x00", "\\u0000")
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def kind(value: Any) -> str:
    """The JSON type name of a decoded value, for 'expected ..., got <kind>' reasons."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (JsonInt, JsonFloat, JsonConstant)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# ---- string checkers: shared by CSV (every value) and JSON (string values)


def copy_text(s: str) -> str:
    """Free text as COPY text format needs it."""
    if "\x00" in s:
        raise Invalid("contains a NUL character, which PostgreSQL cannot store")
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise Invalid("contains an invalid \\u escape (a lone surrogate)") from None
    if _NEEDS_ESCAPE.search(s):
        return s.translate(_ESCAPES)
    return s


def check_timestamp(s: str) -> str:
    m = _TIMESTAMP_SHAPE.fullmatch(s)
    if m is None:
        raise Invalid(f"{show(s)} is not a timestamp {TIMESTAMP_FORMAT}")
    year, month, day, hour, minute, second, fraction, offset = m.groups()
    try:
        datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    except ValueError as exc:
        raise Invalid(f"{show(s)} is not a valid date and time: {exc}") from None
    if offset != "Z" and (int(offset[1:3]) > 15 or int(offset[4:6]) > 59):
        raise Invalid(f"{show(s)} has an out-of-range offset {offset} (at most +-15:59)")
    if fraction is not None and len(fraction) > 6:
        # kept to the microsecond by truncation (never rounds into the next second)
        return f"{s[: m.start(7)]}{fraction[:6]}{offset}"
    return s


def check_date(s: str) -> str:
    m = _DATE_SHAPE.fullmatch(s)
    if m is None:
        raise Invalid(f"{show(s)} is not a date YYYY-MM-DD")
    try:
        date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError as exc:
        raise Invalid(f"{show(s)} is not a valid date: {exc}") from None
    return s


def check_decimal(s: str) -> str:
    m = _DECIMAL_SHAPE.fullmatch(s)
    if m is None:
        raise Invalid(
            f"{show(s)} is not a decimal number (digits with an optional sign and '.', e.g. -12.5)"
        )
    if len(m[1]) > MAX_DIGITS or (m[2] is not None and len(m[2]) > MAX_DIGITS):
        raise Invalid(f"{show(s)} has more than {MAX_DIGITS} digits before or after the point")
    return s


def check_country(s: str) -> str:
    if _COUNTRY.fullmatch(s) is None:
        raise Invalid(f"{show(s)} is not a country code (two capital letters, e.g. US)")
    return s


def enum_checker(values: tuple[str, ...]) -> Callable[[str], str]:
    allowed = frozenset(values)
    listed = ", ".join(values)

    def check_enum(s: str) -> str:
        if s not in allowed:
            raise Invalid(f"{show(s)} is not one of {listed}")
        return s

    return check_enum


def int_checker(column: Column) -> Callable[[str], str]:
    """Integer literal text ([+-]digits) -> its value's text, within the column's range."""
    low, high = column.int_range or (-(2**31), 2**31 - 1)  # else PostgreSQL integer's range

    def check_int(literal: str) -> str:
        # a length check first: int() of thousands of digits is slow (and limited)
        n = int(literal) if len(literal) <= 20 else None
        if n is None or not low <= n <= high:
            raise Invalid(f"{show(literal)} is not between {low} and {high}")
        return str(n)

    return check_int


def country_list_text(items: Any) -> str:
    """A decoded JSON array of countries as a PostgreSQL array literal."""
    if not isinstance(items, list):
        raise Invalid(f"{show(items)} is not a JSON array of country codes")
    for i, item in enumerate(items, 1):
        if type(item) is not str or _COUNTRY.fullmatch(item) is None:
            raise Invalid(
                f"element {i} {show(item)} is not a country code (two capital letters, e.g. US)"
            )
    return "{" + ",".join(items) + "}"


# ---- per-column converters


def _string_checker(column: Column) -> Callable[[str], str] | None:
    if column.type == "timestamp":
        return check_timestamp
    if column.type == "date":
        return check_date
    if column.type == "decimal":
        return check_decimal
    if column.type == "country":
        return check_country
    if column.type == "enum":
        return enum_checker(column.enum)
    if column.type == "text":
        return copy_text
    return None


def csv_converter(column: Column) -> Callable[[str], str]:
    """CSV field -> COPY text for a copy with ``null ''`` (an empty field is null)."""
    name = column.name
    if column.type == "integer":
        check_int = int_checker(column)

        def check(s: str) -> str:
            if _INTEGER_SHAPE.fullmatch(s) is None:
                raise Invalid(f"{show(s)} is not an integer")
            return check_int(s)

    elif column.type == "country_list":

        def check(s: str) -> str:
            try:
                items = json.loads(s)
            except ValueError:
                raise Invalid(f"{show(s)} is not a JSON array of country codes") from None
            return country_list_text(items)

    else:
        check = _string_checker(column)  # type: ignore[assignment]
    nullable = column.nullable

    def convert(s: str) -> str:
        if s == "":
            if nullable:
                return ""
            raise Invalid(f"{name}: missing required value", name)
        try:
            return check(s)
        except Invalid as exc:
            raise Invalid(f"{name}: {exc.reason}", name) from None

    return convert


def json_converter(column: Column) -> Callable[[Any], str]:
    """Decoded JSON value (or MISSING) -> COPY text for a copy with the default ``\\N`` null."""
    name = column.name
    ctype = column.type
    if ctype == "integer":
        check_int = int_checker(column)

        def check(v: Any) -> str:
            if type(v) is not JsonInt:
                raise Invalid(f"{show(v)} is not a JSON integer")
            return check_int(v)

    elif ctype == "decimal":

        def check(v: Any) -> str:
            t = type(v)
            if t is str:
                return check_decimal(v)
            if t is JsonInt:
                return check_decimal(v)
            if t is JsonFloat:
                return _exact_decimal(v)
            if t is JsonConstant:
                raise Invalid(f"{v} is not a decimal number")
            raise Invalid(f"expected a decimal string or JSON number, got {kind(v)} {show(v)}")

    elif ctype == "country_list":
        check = country_list_text

    else:
        check_string = _string_checker(column)
        assert check_string is not None, ctype
        expected = "a JSON string" if ctype == "text" else f"a {ctype} string"

        def check(v: Any) -> str:
            if type(v) is not str:
                raise Invalid(f"expected {expected}, got {kind(v)} {show(v)}")
            return check_string(v)

    nullable = column.nullable

    def convert(v: Any) -> str:
        if v is None or v is MISSING:
            if nullable:
                return COPY_NULL
            raise Invalid(f"{name}: missing required value", name)
        try:
            return check(v)
        except Invalid as exc:
            raise Invalid(f"{name}: {exc.reason}", name) from None

    return convert


def _exact_decimal(literal: str) -> str:
    """A JSON number literal (1e5, 2.50) as plain decimal text, exactly."""
    try:
        d = Decimal(literal)
    except InvalidOperation:
        raise Invalid(f"{literal} is not a decimal number") from None
    if not d.is_finite():
        raise Invalid(f"{literal} is not a finite number")
    exponent = d.as_tuple().exponent
    assert isinstance(exponent, int)
    if d.adjusted() >= MAX_DIGITS or exponent < -MAX_DIGITS:
        raise Invalid(f"{literal} has more than {MAX_DIGITS} digits before or after the point")
    return format(d, "f")
