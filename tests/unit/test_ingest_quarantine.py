"""Quarantined rows: masked, capped, hashed, streamed."""

from __future__ import annotations

import hashlib
import json

from exops.contract import entity
from exops.ingest.quarantine import FULL_ROWS, RAW_TEXT_BYTES, Masker, Quarantine

TICKETS = entity("feedback", "tickets")
USERS = entity("crm", "users")
TRADES = entity("exchange", "trades")


def test_personal_json_fields_emails_and_phones_are_masked() -> None:
    mask = Masker(USERS)
    line = json.dumps(
        {
            "user_id": "u_1",
            "email": "a.b@example.com",
            "phone": "+65 8123 4567",
            "device_id": "dev-9",
            "signup_ip": "203.0.113.7",
            "kyc_level": 7,
            "note": 'write to c@example.org or "+1 (555) 010-9999"',
        }
    )
    assert mask.text(line) == (
        '{"user_id": "u_1", "email": "<masked>", "phone": "<masked>", "device_id": "<masked>",'
        ' "signup_ip": "<masked>", "kyc_level": 7, "note": "write to <masked> or \\"<masked>\\""}'
    )
    assert mask.text('{"email": ["x@y.io"], "phone": 6581234567}') == (
        '{"email": "<masked>", "phone": "<masked>"}'
    )


def test_a_value_cut_by_the_cap_is_masked_or_dropped_whole() -> None:
    q = Quarantine(TICKETS)
    body = "confidential " * 1000
    line = json.dumps({"ticket_id": "K1", "subject": "s", "body": body})
    q.add(1, "priority", "priority: 'x' is not one of ...", line)
    (row,) = q.rows
    assert row.raw_text == (
        '{"ticket_id": "K1", "subject": "<masked>", "body": "<masked>"'
        f"... [{len(line):,} bytes, cut to 4,096]"
    )
    assert row.raw_sha256 == hashlib.sha256(line.encode()).hexdigest()

    q = Quarantine(TRADES)
    line = "T1," + "ab " * 1530 + "someone.long@example.com " * 30
    q.add(2, None, "row has 2 fields, the header has 11", line)
    text = q.rows[-1].raw_text
    assert "@" not in text and "someone" not in text
    assert len(text.split("... [", 1)[0].encode()) <= RAW_TEXT_BYTES


def test_a_huge_row_is_hashed_whole_and_masked_in_a_window() -> None:
    q = Quarantine(TRADES)
    line = "x@example.com," + "a" * 20_000_000
    q.add(1, None, "bad", line)
    (row,) = q.rows
    assert row.raw_text.startswith("<masked>,aaa") and row.raw_text.endswith(
        "[20,000,014 bytes, cut to 4,096]"
    )
    assert row.raw_sha256 == hashlib.sha256(line.encode()).hexdigest()


def test_reasons_never_quote_a_personal_value() -> None:
    q = Quarantine(USERS)
    record = {"email": 12345678, "phone": "not-a-phone-but-private"}
    q.add(
        1, "email", "email: 12345678 is not a string; phone: 'not-a-phone-but-private'", "", record
    )
    assert q.rows[0].reason == "email: <masked> is not a string; phone: <masked>"


def test_past_the_first_rows_only_line_reason_and_hash_are_kept_and_spooled() -> None:
    q = Quarantine(TRADES, spool=True, prefix="7\texchange\ttrades\t2026-01-02\tf.csv\t")
    for n in range(FULL_ROWS + 5):
        q.add(n + 2, "taker_side", "taker_side: 'SIDEWAYS' is not one of buy, sell", f"T{n},a\tb")
    assert q.count == FULL_ROWS + 5 and q.rows == []
    lines = "".join(q.copy_chunks()).splitlines()
    assert len(lines) == FULL_ROWS + 5
    assert lines[0].split("\t")[5:] == [
        "2",
        "taker_side",
        "taker_side: 'SIDEWAYS' is not one of buy, sell",
        "T0,a\\tb",
        hashlib.sha256(b"T0,a\tb").hexdigest(),
    ]
    assert lines[-1].split("\t")[8] == "\\N"
    q.reset()
    assert q.count == 0 and list(q.copy_chunks()) == []
    q.close()
