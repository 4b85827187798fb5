"""Value rules of the landing contract: what each checker accepts, returns and says."""

from __future__ import annotations

import pytest

from exops.contract import Column, entity
from exops.ingest.values import (
    MISSING,
    Invalid,
    check_date,
    check_decimal,
    check_timestamp,
    copy_text,
    csv_converter,
    json_converter,
    json_loads,
)

TS_FORMAT = "is not a timestamp YYYY-MM-DDTHH:MM:SS[.fraction] followed by Z or +-HH:MM"


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-22T13:45:12Z",
        "2026-11-22T13:45:12.123Z",
        "2026-11-22T21:45:12+08:00",
        "2026-11-22T21:45:12.5-03:30",
        "2024-02-29T00:00:00Z",
        "2000-02-29T23:59:59+00:00",
        "2026-11-22T13:45:12.123456+15:59",
    ],
)
def test_timestamps_accepted_unchanged(value: str) -> None:
    assert check_timestamp(value) == value


def test_timestamp_fraction_is_truncated_to_the_microsecond() -> None:
    assert check_timestamp("2026-11-22T23:59:59.999999999Z") == "2026-11-22T23:59:59.999999Z"
    assert check_timestamp("2026-11-22T13:45:12.1234567+08:00") == (
        "2026-11-22T13:45:12.123456+08:00"
    )


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-22T13:45:12",  # no offset
        "2026-11-22T13:45:12+0800",  # basic offset
        "2026-11-22 13:45:12Z",  # space for T
        "2026-11-22T13:45Z",  # no seconds
        "2026-11-22T13:45:12.Z",  # empty fraction
        "2026-11-22T13:45:12.1234567890Z",  # 10 fraction digits
        "2026-11-22t13:45:12z",  # lowercase
        "2026-11-22",
        "",
        "٢٠٢٦-11-22T13:45:12Z",  # non-ASCII digits
    ],
)
def test_timestamp_shapes_refused(value: str) -> None:
    with pytest.raises(Invalid) as exc:
        check_timestamp(value)
    assert exc.value.reason == f"'{value}' {TS_FORMAT}"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("2026-02-30T00:00:00Z", "day is out of range for month"),
        ("2025-02-29T00:00:00Z", "day is out of range for month"),
        ("2026-13-01T00:00:00Z", "month must be in 1..12"),
        ("2026-01-01T25:00:00Z", "hour must be in 0..23"),
        ("2026-01-01T24:00:00Z", "hour must be in 0..23"),
        ("2026-01-01T23:60:00Z", "minute must be in 0..59"),
        ("2026-01-01T23:59:60Z", "second must be in 0..59"),
        ("0000-01-01T00:00:00Z", "year 0 is out of range"),
    ],
)
def test_timestamp_calendar_values_refused(value: str, why: str) -> None:
    with pytest.raises(Invalid) as exc:
        check_timestamp(value)
    assert exc.value.reason == f"'{value}' is not a valid date and time: {why}"


def test_timestamp_offset_beyond_postgresql_range_refused() -> None:
    with pytest.raises(Invalid) as exc:
        check_timestamp("2026-01-01T00:00:00+16:00")
    assert exc.value.reason == (
        "'2026-01-01T00:00:00+16:00' has an out-of-range offset +16:00 (at most +-15:59)"
    )


def test_dates() -> None:
    assert check_date("2024-02-29") == "2024-02-29"
    with pytest.raises(Invalid) as exc:
        check_date("2026-02-30")
    assert exc.value.reason == "'2026-02-30' is not a valid date: day is out of range for month"
    with pytest.raises(Invalid) as exc:
        check_date("2026-2-3")
    assert exc.value.reason == "'2026-2-3' is not a date YYYY-MM-DD"


@pytest.mark.parametrize("value", ["27431.5", "0.00012", "-0.5", "+1.5", "12", "007.50"])
def test_decimals_accepted_as_written(value: str) -> None:
    assert check_decimal(value) == value


@pytest.mark.parametrize(
    "value", ["NaN", "Infinity", "-Infinity", "1e5", ".5", "5.", "1,5", " 1.5", "1.5 ", "", "--1"]
)
def test_decimals_refused(value: str) -> None:
    with pytest.raises(Invalid) as exc:
        check_decimal(value)
    assert exc.value.reason == (
        f"'{value}' is not a decimal number (digits with an optional sign and '.', e.g. -12.5)"
    )


def test_decimal_with_absurdly_many_digits_refused() -> None:
    with pytest.raises(Invalid) as exc:
        check_decimal("1" * 1001)
    assert "has more than 1000 digits before or after the point" in exc.value.reason


def test_copy_text_escapes_and_refuses_nul() -> None:
    assert copy_text("a\tb\\c\nd\re") == "a\\tb\\\\c\\nd\\re"
    assert copy_text("plain ünïcode") == "plain ünïcode"
    with pytest.raises(Invalid) as exc:
        copy_text("a\x00b")
    assert exc.value.reason == "contains a NUL character, which PostgreSQL cannot store"
    with pytest.raises(Invalid) as exc:
        copy_text("lone \ud800 surrogate")
    assert exc.value.reason == "contains an invalid \\u escape (a lone surrogate)"


# ---- CSV converters (empty field = null)

TRADES = entity("exchange", "trades")
EVENTS = entity("exchange", "product_events")


def test_csv_enum_is_case_sensitive() -> None:
    convert = csv_converter(TRADES.column("taker_side"))
    assert convert("buy") == "buy"
    with pytest.raises(Invalid) as exc:
        convert("BUY")
    assert exc.value.reason == "taker_side: 'BUY' is not one of buy, sell"
    assert exc.value.column == "taker_side"


def test_csv_empty_field_is_null_or_missing() -> None:
    assert csv_converter(EVENTS.column("note"))("") == ""  # COPY null ''
    with pytest.raises(Invalid) as exc:
        csv_converter(TRADES.column("price"))("")
    assert exc.value.reason == "price: missing required value"


def test_csv_integer_column_in_range() -> None:
    convert = csv_converter(Column("level", "integer", int_range=(0, 2)))
    assert convert("2") == "2"
    with pytest.raises(Invalid) as exc:
        convert("3")
    assert exc.value.reason == "level: '3' is not between 0 and 2"
    with pytest.raises(Invalid) as exc:
        convert("1.0")
    assert exc.value.reason == "level: '1.0' is not an integer"


# ---- JSON converters (null / absent = null, "" is a value)

USERS = entity("crm", "users")
CAMPAIGNS = entity("crm", "campaigns")
SURVEYS = entity("feedback", "survey_responses")


def _json(column: Column, line: str) -> str:
    return json_converter(column)(json_loads(line)["v"])


def _json_reason(column: Column, line: str) -> str:
    with pytest.raises(Invalid) as exc:
        _json(column, line)
    return exc.value.reason


def test_json_decimal_accepts_strings_and_numbers_exactly() -> None:
    price = Column("price", "decimal")
    assert _json(price, '{"v": "27431.50"}') == "27431.50"
    assert _json(price, '{"v": 0.1}') == "0.1"
    assert _json(price, '{"v": 12}') == "12"
    assert _json(price, '{"v": 1e5}') == "100000"
    assert _json(price, '{"v": 1.5E-3}') == "0.0015"
    assert _json(price, '{"v": 123456789012345678901234567890.123456789}') == (
        "123456789012345678901234567890.123456789"
    )


def test_json_decimal_refusals() -> None:
    price = Column("price", "decimal")
    assert _json_reason(price, '{"v": NaN}') == "price: NaN is not a decimal number"
    assert _json_reason(price, '{"v": -Infinity}') == "price: -Infinity is not a decimal number"
    assert _json_reason(price, '{"v": "1e5"}') == (
        "price: '1e5' is not a decimal number (digits with an optional sign and '.', e.g. -12.5)"
    )
    assert _json_reason(price, '{"v": true}') == (
        "price: expected a decimal string or JSON number, got boolean true"
    )


def test_json_integer_must_be_a_json_integer_in_range() -> None:
    kyc = USERS.column("kyc_level")
    assert _json(kyc, '{"v": 2}') == "2"
    assert _json_reason(kyc, '{"v": "1"}') == "kyc_level: '1' is not a JSON integer"
    assert _json_reason(kyc, '{"v": 7.5}') == "kyc_level: 7.5 is not a JSON integer"
    assert _json_reason(kyc, '{"v": 1.0}') == "kyc_level: 1.0 is not a JSON integer"
    assert _json_reason(kyc, '{"v": true}') == "kyc_level: true is not a JSON integer"
    assert _json_reason(kyc, '{"v": 3}') == "kyc_level: 3 is not between 0 and 2"
    assert _json_reason(kyc, '{"v": -1}') == "kyc_level: -1 is not between 0 and 2"
    assert _json_reason(kyc, '{"v": ' + "9" * 5000 + "}") == (
        "kyc_level: " + "9" * 57 + "... is not between 0 and 2"
    )


def test_json_null_absent_and_empty_string() -> None:
    phone = USERS.column("phone")
    email = USERS.column("email")
    assert json_converter(phone)(None) == "\\N"
    assert json_converter(phone)(MISSING) == "\\N"
    assert json_converter(email)("") == ""  # "" is a value in JSON
    with pytest.raises(Invalid) as exc:
        json_converter(email)(MISSING)
    assert exc.value.reason == "email: missing required value"
    with pytest.raises(Invalid) as exc:
        json_converter(email)(None)
    assert exc.value.reason == "email: missing required value"


def test_json_text_must_be_a_string() -> None:
    assert _json_reason(USERS.column("user_id"), '{"v": 123}') == (
        "user_id: expected a JSON string, got number 123"
    )
    assert _json_reason(USERS.column("registered_at"), '{"v": 1700000000}') == (
        "registered_at: expected a timestamp string, got number 1700000000"
    )


def test_json_country_and_country_list() -> None:
    country = USERS.column("country")
    assert _json(country, '{"v": "SG"}') == "SG"
    assert _json_reason(country, '{"v": "sg"}') == (
        "country: 'sg' is not a country code (two capital letters, e.g. US)"
    )
    assert _json_reason(country, '{"v": "SGP"}') == (
        "country: 'SGP' is not a country code (two capital letters, e.g. US)"
    )
    excluded = CAMPAIGNS.column("excluded_countries")
    assert _json(excluded, '{"v": ["US", "CN"]}') == "{US,CN}"
    assert _json(excluded, '{"v": []}') == "{}"
    assert _json_reason(excluded, '{"v": "US"}') == (
        "excluded_countries: 'US' is not a JSON array of country codes"
    )
    assert _json_reason(excluded, '{"v": ["US", "usa"]}') == (
        "excluded_countries: element 2 'usa' is not a country code (two capital letters, e.g. US)"
    )
    assert _json_reason(excluded, '{"v": null}') == "excluded_countries: missing required value"


def test_json_enum_values() -> None:
    survey = SURVEYS.column("survey")
    assert _json(survey, '{"v": "nps"}') == "nps"
    assert _json_reason(survey, '{"v": "NPS"}') == "survey: 'NPS' is not one of nps, csat"
    assert _json_reason(survey, '{"v": ""}') == "survey: '' is not one of nps, csat"
    assert _json(SURVEYS.column("product_line"), '{"v": null}') == "\\N"
