"""Parsing landing files into COPY text: CSV and JSON Lines rules, line numbers, rejections."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from exops.contract import entity
from exops.ingest.files import FileOutcome
from exops.ingest.parse_csv import parse_csv
from exops.ingest.parse_jsonl import parse_jsonl

SUFFIX = "\t7\t2026-01-02\tf\n"
TRADES = entity("exchange", "trades")
EVENTS = entity("exchange", "product_events")
USERS = entity("crm", "users")
SURVEYS = entity("feedback", "survey_responses")
HEADER = (
    "trade_id,product_id,executed_at,price,quantity,quote_amount,taker_side,"
    "maker_user_id,taker_user_id,maker_fee,taker_fee"
)


def trade(trade_id: str = "T1", side: str = "buy", at: str = "2026-01-02T10:00:00Z") -> str:
    return f"{trade_id},BTC-USDT,{at},27431.5,0.001,27.4315,{side},u1,u2,-0.01,0.02"


def _unescape(field: str) -> str | None:
    if field == "\\N":
        return None
    out, i = [], 0
    while i < len(field):
        c = field[i]
        if c == "\\":
            nxt = field[i + 1]
            out.append({"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def run(path: Path, ent, *, csv_nulls: bool | None = None) -> tuple[FileOutcome, list[dict]]:
    """Parse ``path``; the outcome and the COPY rows as dicts (meta: _line, _load_id...)."""
    chunks: list[str] = []
    parse = parse_csv if ent.file_format == "csv" else parse_jsonl
    outcome = parse(path, ent, suffix=SUFFIX, write=chunks.append)
    names = [*ent.column_names, "_line", "_load_id", "_dt", "_file"]
    rows = []
    for line in "".join(chunks).split("\n")[:-1]:
        fields = line.split("\t")
        assert len(fields) == len(names), line
        row = {}
        for name, field in zip(names, fields, strict=True):
            value = _unescape(field)
            if ent.file_format == "csv" and value == "":
                value = None  # COPY null ''
            row[name] = value
        rows.append(row)
    if outcome.status != "rejected":
        assert len(rows) == outcome.rows_loaded
        assert outcome.rows_in_file == outcome.rows_loaded + outcome.rows_quarantined
    return outcome, rows


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    data = text.encode() if isinstance(text, str) else text
    if name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


# ---- CSV


def test_csv_rows_values_and_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", f"{HEADER}\n{trade('T1')}\n{trade('T2', 'sell')}\n")
    outcome, rows = run(path, TRADES)
    assert (outcome.status, outcome.rows_in_file, outcome.rows_loaded) == ("loaded", 2, 2)
    assert [r["trade_id"] for r in rows] == ["T1", "T2"]
    assert [r["_line"] for r in rows] == ["2", "3"]
    assert rows[1]["taker_side"] == "sell"
    assert rows[0]["maker_fee"] == "-0.01"
    assert (rows[0]["_load_id"], rows[0]["_dt"], rows[0]["_file"]) == ("7", "2026-01-02", "f")


def test_csv_bad_rows_quarantined_with_line_and_reason(tmp_path: Path) -> None:
    lines = [
        HEADER,
        trade("T1"),
        trade("T2", side="BUY"),
        trade("T3", at="2026-01-02 10:00:00Z"),
        "T4,BTC-USDT,2026-01-02T10:00:00Z,NaN,1e5,.5,buy,u1,u2,5.,0",
        "T5,BTC-USDT",
        trade("T6") + ",extra",
        trade("T7", at="2026-02-30T10:00:00Z"),
        ",BTC-USDT,2026-01-02T10:00:00Z,1,1,1,buy,u1,u2,0,0",
    ]
    outcome, rows = run(write(tmp_path, "a.csv", "\n".join(lines) + "\n"), TRADES)
    assert [r["trade_id"] for r in rows] == ["T1"]
    got = [(q.line, q.column, q.reason) for q in outcome.quarantined]
    decimal = "is not a decimal number (digits with an optional sign and '.', e.g. -12.5)"
    assert got == [
        (3, "taker_side", "taker_side: 'BUY' is not one of buy, sell"),
        (
            4,
            "executed_at",
            "executed_at: '2026-01-02 10:00:00Z' is not a timestamp "
            "YYYY-MM-DDTHH:MM:SS[.fraction] followed by Z or +-HH:MM",
        ),
        (
            5,
            "price",
            f"price: 'NaN' {decimal}; quantity: '1e5' {decimal}; quote_amount: '.5' {decimal}; "
            f"maker_fee: '5.' {decimal}",
        ),
        (6, None, "row has 2 fields, the header has 11"),
        (7, None, "row has 12 fields, the header has 11"),
        (
            8,
            "executed_at",
            "executed_at: '2026-02-30T10:00:00Z' is not a valid date and time: "
            "day is out of range for month",
        ),
        (9, "trade_id", "trade_id: missing required value"),
    ]
    assert outcome.quarantined[0].raw_text == trade("T2", side="BUY")
    assert outcome.rows_in_file == 8


def test_csv_header_by_name_extra_columns_bom_crlf_blank_lines(tmp_path: Path) -> None:
    header = (
        "extra,taker_side,trade_id,product_id,executed_at,price,quantity,quote_amount,"
        "maker_user_id,taker_user_id,maker_fee,taker_fee,nested"
    )
    text = (
        "\ufeff\r\n"
        f"{header}\r\n"
        'x,buy,T1,P1,2026-01-02T10:00:00+08:00,1.5,2,3,u1,u2,0,0,"{""a"": 1}"\r\n'
        "\r\n"
        "   \r\n"
        'y,sell,"T\r\n2, with ""quotes""",P1,2026-01-02T10:00:00Z,1,2,3,u1,u2,0,0,z\r\n'
        "z,buy,T3,P1,2026-01-02T10:00:00Z,1,2,3,u1,u2,0,0,z"  # no final line break
    )
    outcome, rows = run(write(tmp_path, "a.csv", text), TRADES)
    assert outcome.quarantined == []
    assert [(r["trade_id"], r["_line"]) for r in rows] == [
        ("T1", "3"),
        ('T\r\n2, with "quotes"', "6"),
        ("T3", "8"),
    ]
    assert rows[0]["taker_side"] == "buy" and rows[0]["executed_at"] == (
        "2026-01-02T10:00:00+08:00"
    )


def test_csv_quoted_newlines_keep_physical_line_numbers_for_quarantine(tmp_path: Path) -> None:
    text = (
        "event_id,product_id,event_type,event_at,note\n"
        'E1,P1,listed,2026-01-02T00:00:00Z,"line one\nline two\nline three"\n'
        'E2,P1,LISTED,2026-01-02T00:00:00Z,"a\nb"\n'
        "E3,P1,listed,2026-01-02T00:00:00Z,\n"
    )
    outcome, rows = run(write(tmp_path, "a.csv", text), EVENTS)
    assert [(r["event_id"], r["_line"], r["note"]) for r in rows] == [
        ("E1", "2", "line one\nline two\nline three"),
        ("E3", "7", None),
    ]
    (q,) = outcome.quarantined
    assert (q.line, q.reason) == (
        5,
        "event_type: 'LISTED' is not one of " + ", ".join(EVENTS.column("event_type").enum),
    )
    assert q.raw_text == 'E2,P1,LISTED,2026-01-02T00:00:00Z,"a\nb"'


def test_csv_fast_and_slow_paths_agree_on_escapes(tmp_path: Path) -> None:
    text = (
        "event_id,product_id,event_type,event_at,note\n"
        "E1,P1,listed,2026-01-02T00:00:00.1234567Z,back\\slash\n"
        'E2,P1,listed,2026-01-02T00:00:00Z,"tab\there"\n'
    )
    _, rows = run(write(tmp_path, "a.csv", text), EVENTS)
    assert [(r["note"], r["event_at"]) for r in rows] == [
        ("back\\slash", "2026-01-02T00:00:00.123456Z"),
        ("tab\there", "2026-01-02T00:00:00Z"),
    ]


def test_csv_missing_column_rejects_the_file_and_counts_rows(tmp_path: Path) -> None:
    header = HEADER.replace(",maker_fee", "")
    body = [trade(f"T{i}").replace(",-0.01", "") for i in range(3)]
    outcome, _ = run(write(tmp_path, "a.csv", "\n".join([header, *body]) + "\n"), TRADES)
    reason = "missing required column 'maker_fee' in the header (line 1)"
    assert (outcome.status, outcome.error) == ("rejected", reason)
    assert (outcome.rows_in_file, outcome.rows_loaded, outcome.rows_quarantined) == (3, 0, 3)
    assert {(q.line, q.reason) for q in outcome.quarantined} == {
        (2, f"file rejected: {reason}"),
        (3, f"file rejected: {reason}"),
        (4, f"file rejected: {reason}"),
    }


def test_csv_missing_nullable_column_rejects_too(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "event_id,product_id,event_type,event_at\n")
    outcome, _ = run(path, EVENTS)
    assert outcome.status == "rejected"
    assert outcome.error == "missing required column 'note' in the header (line 1)"
    assert outcome.rows_in_file == 0


def test_csv_unterminated_quote_rejects_the_file(tmp_path: Path) -> None:
    text = f'{HEADER}\n{trade("T1")}\n{trade("T2")}\n"T3,BTC-USDT\n{trade("T4")}\n'
    outcome, _ = run(write(tmp_path, "a.csv", text), TRADES)
    assert outcome.status == "rejected"
    assert outcome.error == "not valid CSV: the quoted field starting on line 4 is never closed"
    assert (outcome.rows_in_file, outcome.rows_quarantined) == (3, 3)
    assert [q.line for q in outcome.quarantined] == [2, 3, 4]


def test_csv_stray_quote_quarantines_the_row(tmp_path: Path) -> None:
    text = f'{HEADER}\n"T1"x,{trade("T1")[3:]}\n{trade("T2")}\n'
    outcome, rows = run(write(tmp_path, "a.csv", text), TRADES)
    assert [r["trade_id"] for r in rows] == ["T2"]
    (q,) = outcome.quarantined
    assert q.line == 2
    assert q.reason.startswith("not valid CSV: line 2: ',' expected after '\"'")


@pytest.mark.parametrize("content", ["", HEADER + "\n", HEADER, "\n\n", "\ufeff"])
def test_csv_empty_deliveries(tmp_path: Path, content: str) -> None:
    outcome, rows = run(write(tmp_path, "a.csv", content), TRADES)
    assert (outcome.status, outcome.rows_in_file, rows) == ("empty", 0, [])


def test_csv_gzip(tmp_path: Path) -> None:
    outcome, rows = run(write(tmp_path, "a.csv.gz", f"{HEADER}\n{trade()}\n"), TRADES)
    assert (outcome.status, len(rows)) == ("loaded", 1)


def test_csv_not_utf8_rejected_without_row_count(tmp_path: Path) -> None:
    data = f"{HEADER}\n{trade('T1')}\n".encode() + b"T2,caf\xe9\n"
    outcome, _ = run(write(tmp_path, "a.csv", data), TRADES)
    assert (outcome.status, outcome.rows_in_file) == ("rejected", None)
    assert outcome.error == (
        "not valid UTF-8: line 3, byte 7 of the line (0xe9): invalid continuation byte"
    )


def test_corrupt_and_truncated_gzip_rejected(tmp_path: Path) -> None:
    good = gzip.compress(f"{HEADER}\n{trade()}\n".encode() * 50)
    (tmp_path / "t.csv.gz").write_bytes(good[: len(good) // 2])
    outcome, _ = run(tmp_path / "t.csv.gz", TRADES)
    assert (outcome.status, outcome.rows_in_file) == ("rejected", None)
    assert outcome.error is not None
    assert outcome.error.startswith("corrupt or truncated gzip file: Compressed file ended")
    (tmp_path / "p.csv.gz").write_bytes(f"{HEADER}\n".encode())
    outcome, _ = run(tmp_path / "p.csv.gz", TRADES)
    assert outcome.status == "rejected"
    assert outcome.error is not None and "Not a gzipped file" in outcome.error


def test_csv_many_blocks_keep_line_numbers(tmp_path: Path) -> None:
    lines = [HEADER]
    for i in range(30_000):
        lines.append(trade(f"T{i}", side="SELL" if i % 9_999 == 5 else "buy"))
        if i == 12_345:
            lines.append('"Q1",P,2026-01-02T10:00:00Z,1,1,1,buy,"multi\nline",u2,0,0')
    outcome, rows = run(write(tmp_path, "big.csv", "\n".join(lines) + "\n"), TRADES)
    assert outcome.rows_in_file == 30_001
    assert [q.line for q in outcome.quarantined] == [7, 10006, 20007]  # after the 2-line row
    by_id = {r["trade_id"]: int(r["_line"]) for r in rows}
    assert by_id["T0"] == 2
    assert by_id["Q1"] == 12_348
    assert by_id["T12346"] == 12_350
    assert by_id["T29999"] == 30_003


# ---- JSON Lines


def user(**overrides) -> str:
    import json

    record = {
        "user_id": "u1",
        "registered_at": "2026-01-02T10:00:00+08:00",
        "country": "SG",
        "acquisition_channel": "organic",
        "referrer_user_id": None,
        "kyc_level": 1,
        "email": "a@example.com",
        "phone": None,
        "device_id": "d1",
        "signup_ip": "10.0.0.1",
        "updated_at": "2026-01-02T10:00:00Z",
        "profile": {"nested": [1, 2, {"x": None}]},
    }
    for key, value in overrides.items():
        if value is ...:
            record.pop(key)
        else:
            record[key] = value
    return json.dumps(record)


def test_jsonl_rows_and_rules(tmp_path: Path) -> None:
    lines = [
        user(),
        "",
        user(user_id="u2", kyc_level="1"),
        "not json",
        "[1, 2]",
        user(user_id="u3", phone=..., referrer_user_id=...),
        user(user_id="u4", email=...),
        user(user_id="u5", email=""),
        "   ",
        user(user_id="u6", country="sg", acquisition_channel="Organic"),
    ]
    outcome, rows = run(write(tmp_path, "a.jsonl", "\r\n".join(lines) + "\r\n"), USERS)
    assert [(r["user_id"], r["_line"]) for r in rows] == [("u1", "1"), ("u3", "6"), ("u5", "8")]
    assert rows[1]["phone"] is None and rows[2]["email"] == ""
    assert [(q.line, q.column, q.reason) for q in outcome.quarantined] == [
        (3, "kyc_level", "kyc_level: '1' is not a JSON integer"),
        (4, None, "invalid JSON: Expecting value at column 1"),
        (5, None, "not a JSON object (got array)"),
        (7, "email", "email: missing required value"),
        (
            10,
            "country",
            "country: 'sg' is not a country code (two capital letters, e.g. US); "
            "acquisition_channel: 'Organic' is not one of "
            + ", ".join(USERS.column("acquisition_channel").enum),
        ),
    ]
    assert outcome.quarantined[1].raw_text == "not json"
    assert outcome.rows_in_file == 8


def test_jsonl_survey_score_range_depends_on_survey(tmp_path: Path) -> None:
    def survey(rid: str, kind: str, score) -> str:
        return (
            f'{{"response_id": "{rid}", "user_id": null, "survey": "{kind}", "score": {score},'
            ' "submitted_at": "2026-01-02T00:00:00Z"}'
        )

    lines = [
        survey("r1", "nps", 0),
        survey("r2", "nps", 10),
        survey("r3", "csat", 5),
        survey("r4", "csat", 0),
        survey("r5", "csat", 7),
        survey("r6", "nps", 11),
        survey("r7", "nps", 7.5),
    ]
    outcome, rows = run(write(tmp_path, "s.jsonl", "\n".join(lines)), SURVEYS)
    assert [r["response_id"] for r in rows] == ["r1", "r2", "r3"]
    assert rows[0]["product_line"] is None and rows[0]["comment"] is None
    assert [(q.line, q.column, q.reason) for q in outcome.quarantined] == [
        (4, "score", "score: 0 is not between 1 and 5 for survey 'csat'"),
        (5, "score", "score: 7 is not between 1 and 5 for survey 'csat'"),
        (6, "score", "score: 11 is not between 0 and 10"),
        (7, "score", "score: 7.5 is not a JSON integer"),
    ]


def test_jsonl_no_parsable_line_rejects_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "a.jsonl.gz", "user_id,country\nu1,SG\n\nu2,CN\n")
    outcome, _ = run(path, USERS)
    assert outcome.status == "rejected"
    assert outcome.error == (
        "not JSON Lines: no line is valid JSON "
        "(first error: line 1: invalid JSON: Expecting value at column 1)"
    )
    assert (outcome.rows_in_file, outcome.rows_quarantined) == (3, 3)
    assert [q.line for q in outcome.quarantined] == [1, 2, 4]


def test_jsonl_nul_and_surrogates_quarantined_not_crashing(tmp_path: Path) -> None:
    lines = [user(user_id="a\\u0000b"), user(user_id="\\ud800"), user(email="tab\there")]
    text = "\n".join(lines).replace("\\\\u", "\\u")
    outcome, rows = run(write(tmp_path, "a.jsonl", text), USERS)
    assert [r["email"] for r in rows] == ["tab\there"]
    assert [q.reason for q in outcome.quarantined] == [
        "user_id: contains a NUL character, which PostgreSQL cannot store",
        "user_id: contains an invalid \\u escape (a lone surrogate)",
    ]


def test_jsonl_bom_and_empty(tmp_path: Path) -> None:
    outcome, rows = run(write(tmp_path, "a.jsonl", "\ufeff" + user() + "\n"), USERS)
    assert (outcome.status, len(rows)) == ("loaded", 1)
    outcome, rows = run(write(tmp_path, "b.jsonl", ""), USERS)
    assert (outcome.status, outcome.rows_in_file) == ("empty", 0)
    outcome, rows = run(write(tmp_path, "c.jsonl", b"\xff\xfe{}\n"), USERS)
    assert (outcome.status, outcome.rows_in_file) == ("rejected", None)
    assert outcome.error == "not valid UTF-8: line 1, byte 1 of the line (0xff): invalid start byte"


def test_tiny_blocks_give_the_same_result(tmp_path: Path, monkeypatch) -> None:
    """Records that straddle block boundaries (fast and csv paths mixed) parse the same."""
    lines = [HEADER]
    for i in range(40):
        if i % 7 == 3:
            lines.append(f'"Q{i}",P,2026-01-02T10:00:00Z,1,1,1,buy,"multi\r\nline",u2,0,0')
        elif i % 11 == 5:
            lines.append(trade(f"T{i}", side="SELL"))
        else:
            lines.append(trade(f"T{i}"))
    path = write(tmp_path, "a.csv", "\r\n".join(lines) + "\r\n")
    expected_outcome, expected_rows = run(path, TRADES)
    import exops.ingest.parse_csv as parse_module

    for size in (1, 50, 200, 333):
        monkeypatch.setattr(parse_module, "BLOCK_CHARS", size)
        outcome, rows = run(path, TRADES)
        assert rows == expected_rows
        assert outcome == expected_outcome
    assert len(expected_rows) == 40 - 3
    assert [q.line for q in expected_outcome.quarantined] == [8, 20, 33]


@pytest.mark.parametrize("end", ["\n", "\r\n"])
def test_csv_block_check_does_not_join_short_rows_across_a_line_end(
    tmp_path: Path, end: str
) -> None:
    # 8 fields, then 4: read across the line end as one row they would be 11 valid fields
    short = "T2,BTC-USDT,2026-01-02T10:00:00Z,1,1,1,buy,u1"
    rest = "u2,u3,-0.01,0.02"
    text = end.join([HEADER, trade("T1"), short, rest, trade("T3")]) + end
    outcome, rows = run(write(tmp_path, "a.csv", text), TRADES)
    assert [r["trade_id"] for r in rows] == ["T1", "T3"]
    assert [(q.line, q.reason) for q in outcome.quarantined] == [
        (3, "row has 8 fields, the header has 11"),
        (4, "row has 4 fields, the header has 11"),
    ]
