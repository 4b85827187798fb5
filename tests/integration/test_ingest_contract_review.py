"""Contract review of ``exops ingest``: deliveries written from shared/spec/SOURCES.md alone.

Nothing here uses the project's simulator or the loader's internals. Every file is written by
hand from the contract text, with the liberties the contract allows (shuffled and extra
columns, extra nested JSON keys, gzip, several files per partition, offsets, 1-9 digit
fractions, CRLF, BOM, RFC 4180 quoting, header-only and 0-byte files, blank lines, JSON numbers
for decimals, absent nullable keys, ``""`` values) and with the bad deliveries the contract
names. Each record knows its physical line and its expected fate, so the checks are exact:

* every file of a complete partition has one current ``audit.loads`` row;
* rows_in_file = rows_loaded + rows_quarantined; raw and audit.quarantine hold exactly those;
* each good record is in raw at its (file, line) with exact values (numeric, UTC timestamps);
* each bad record is in audit.quarantine at its (file, line) with the column and a reason
  naming the column and the offending value;
* re-deliveries (changed content, renamed files, removed duplicate file, swapped names, an
  empty re-delivery) replace the partition; a rewritten ``_SUCCESS`` alone or a partition whose
  ``_SUCCESS`` is gone changes nothing; a second run changes nothing.

``exops ingest`` is run as the CLI, the way the checker runs it.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from exops.contract import ENTITIES, entity

EXOPS = str(Path(sys.executable).parent / "exops")
DT = "2026-11-22"


ODD_SPACES = "a\u2028b\u2029c\x85d\x0be\x0cf\x1cg"


def ts(s: str) -> datetime:
    """An expected UTC instant, written as 'YYYY-MM-DD HH:MM:SS[.ffffff]'."""
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# Delivery builders: every record knows its physical line and its expected outcome


@dataclass
class Rec:
    """One record of a file. ``bad`` = (column or None, text the reason must contain)."""

    fields: dict[str, Any] | None = None  # CSV fields / JSON object
    raw: str | None = None  # the record's exact text instead of ``fields``
    ok: dict[str, Any] = field(default_factory=dict)  # expected raw values when loaded
    bad: tuple[str | None, str] | None = None
    blank: bool = False


BLANK = Rec(blank=True)


@dataclass
class FileSpec:
    rel: str  # path under the landing root
    data: bytes
    status: str  # "rows" (loaded, maybe with quarantine), "empty" or "rejected"
    recs: list[tuple[int, Rec]] = field(default_factory=list)  # (physical line, record)
    rows_in: int | None | str = "count"  # "count": len(records); "null-or-count": either
    error: str | None = None  # text the rejection reason must contain

    @property
    def source(self) -> str:
        return self.rel.split("/")[0]

    @property
    def entity(self) -> str:
        return self.rel.split("/")[1]

    @property
    def rows(self) -> list[tuple[int, Rec]]:
        return [(line, r) for line, r in self.recs if not r.blank]

    @property
    def good(self) -> list[tuple[int, Rec]]:
        return [(line, r) for line, r in self.rows if r.bad is None]

    @property
    def bad(self) -> list[tuple[int, Rec]]:
        return [(line, r) for line, r in self.rows if r.bad is not None]


def _csv_line(values: list[str]) -> str:
    buf = io.StringIO()
    # QUOTE_MINIMAL quotes a field holding CR/LF only when they are in the line terminator
    csv.writer(buf, lineterminator="\r\n").writerow(values)
    return buf.getvalue()[:-2]


def csv_file(
    rel: str,
    header: list[str],
    recs: list[Rec],
    *,
    eol: str = "\n",
    bom: bool = False,
    gz: bool = False,
    status: str = "rows",
    error: str | None = None,
) -> FileSpec:
    texts = [_csv_line(header)]
    placed: list[tuple[int, Rec]] = []
    line = 2
    for rec in recs:
        if rec.blank:
            text = ""
        elif rec.raw is not None:
            text = rec.raw
        else:
            assert rec.fields is not None
            text = _csv_line([str(rec.fields.get(h, "")) for h in header])
        placed.append((line, rec))
        line += text.replace("\r\n", "\n").count("\n") + 1
        texts.append(text)
    data = (eol.join(texts) + eol).encode()
    if bom:
        data = b"\xef\xbb\xbf" + data
    if gz:
        data = gzip.compress(data)
    if not any(not r.blank for r in recs) and status == "rows":
        status = "empty"
    return FileSpec(rel, data, status, placed, error=error)


def jsonl_file(
    rel: str,
    recs: list[Rec],
    *,
    eol: str = "\n",
    bom: bool = False,
    gz: bool = False,
    status: str = "rows",
    error: str | None = None,
) -> FileSpec:
    texts: list[str] = []
    placed: list[tuple[int, Rec]] = []
    for i, rec in enumerate(recs, start=1):
        if rec.blank:
            text = ""
        elif rec.raw is not None:
            text = rec.raw
        else:
            text = json.dumps(rec.fields)
        placed.append((i, rec))
        texts.append(text)
    data = (eol.join(texts) + eol).encode()
    if bom:
        data = b"\xef\xbb\xbf" + data
    if gz:
        data = gzip.compress(data)
    return FileSpec(rel, data, status, placed, error=error)


def part_dir(source: str, ent: str, dt: str = DT) -> str:
    return f"{source}/{ent}/dt={dt}"


# --------------------------------------------------------------------------------------------
# exchange/trades: shuffled header, extra column, BOM, CRLF, blank line, every value rule

TRADE_HEADER = [
    "taker_fee",
    "venue_note",  # not in the contract
    "trade_id",
    "executed_at",
    "price",
    "quantity",
    "quote_amount",
    "taker_side",
    "maker_user_id",
    "taker_user_id",
    "maker_fee",
    "product_id",
]
TRADE_COLS = list(entity("exchange", "trades").column_names)


def trade(tid: str, **kw: str) -> dict[str, str]:
    d = {
        "trade_id": tid,
        "product_id": "BTC-USDT",
        "executed_at": "2026-11-22T10:00:00Z",
        "price": "27431.5",
        "quantity": "0.00012",
        "quote_amount": "3.29178",
        "taker_side": "buy",
        "maker_user_id": "u_1",
        "taker_user_id": "u_2",
        "maker_fee": "-0.001",
        "taker_fee": "0.002",
        "venue_note": 'x, "y"',
    }
    d.update(kw)
    return d


def bad_trade(tid: str, col: str, value: str) -> Rec:
    return Rec(trade(tid, **{col: value}), bad=(col, value or "missing"))


def trades_part_001() -> FileSpec:
    row_t5 = [str(trade("T-19")[h]) for h in TRADE_HEADER]
    return csv_file(
        f"{part_dir('exchange', 'trades')}/part-001.csv",
        TRADE_HEADER,
        [
            Rec(
                trade("T-1"),
                ok={
                    "trade_id": "T-1",
                    "executed_at": ts("2026-11-22 10:00:00"),
                    "price": Decimal("27431.5"),
                    "quantity": Decimal("0.00012"),
                    "quote_amount": Decimal("3.29178"),
                    "taker_side": "buy",
                    "maker_user_id": "u_1",
                    "taker_user_id": "u_2",
                    "maker_fee": Decimal("-0.001"),
                    "taker_fee": Decimal("0.002"),
                    "product_id": "BTC-USDT",
                },
            ),
            BLANK,
            Rec(
                trade("T-2", executed_at="2026-11-22T21:45:12.123456400+08:00"),
                ok={"executed_at": ts("2026-11-22 13:45:12.123456")},
            ),
            Rec(
                # -05:30 crosses the UTC day; a quoted CRLF in the extra column adds a line
                trade(
                    "T-3",
                    executed_at="2026-11-21T23:30:00-05:30",
                    price="+1.5",
                    quantity="12",
                    quote_amount="18",
                    venue_note="multi\r\nline",
                ),
                ok={
                    "executed_at": ts("2026-11-22 05:00:00"),
                    "price": Decimal("1.5"),
                    "quantity": Decimal("12"),
                    "quote_amount": Decimal("18"),
                },
            ),
            Rec(
                trade(
                    "T-4",
                    executed_at="2026-11-22T10:00:00.1Z",
                    price="123456789012345678.123456789012",
                ),
                ok={
                    "executed_at": ts("2026-11-22 10:00:00.100000"),
                    "price": Decimal("123456789012345678.123456789012"),
                },
            ),
            Rec(
                trade("T-5", executed_at="2026-11-22T10:00:00.123+00:00", price="0.1"),
                ok={"executed_at": ts("2026-11-22 10:00:00.123000"), "price": Decimal("0.1")},
            ),
            bad_trade("T-6", "taker_side", "BUY"),
            bad_trade("T-7", "price", "1e5"),
            bad_trade("T-8", "price", ".5"),
            bad_trade("T-9", "price", "5."),
            bad_trade("T-10", "price", "NaN"),
            bad_trade("T-11", "price", "Infinity"),
            bad_trade("T-12", "executed_at", "2026-11-22T10:00:00"),
            bad_trade("T-13", "executed_at", "2026-11-22T10:00:00+0800"),
            bad_trade("T-14", "executed_at", "2026-11-22 10:00:00Z"),
            bad_trade("T-15", "executed_at", "2026-02-30T10:00:00Z"),
            bad_trade("T-16", "executed_at", "2026-11-22T10:00:00.1234567891Z"),
            bad_trade("T-17", "maker_fee", ""),
            Rec(raw=",".join(_csv_line([x]) for x in row_t5[:-1]), bad=(None, "field")),
            Rec(raw=_csv_line(row_t5) + ",surplus", bad=(None, "field")),
            # the same key again within the delivery: both rows are kept in raw
            Rec(trade("T-1", price="-0.5"), ok={"trade_id": "T-1", "price": Decimal("-0.5")}),
        ],
        eol="\r\n",
        bom=True,
    )


def trades_part_002_gz() -> FileSpec:
    return csv_file(
        f"{part_dir('exchange', 'trades')}/part-002.csv.gz",
        TRADE_COLS,
        [
            Rec(
                trade(t, executed_at="2026-11-22T08:00:00.987654321Z"),
                ok={"trade_id": t, "executed_at": ts("2026-11-22 08:00:00.987654")},
            )
            for t in ("T-100", "T-101")
        ],
        gz=True,
    )


def trades_partition() -> list[FileSpec]:
    base = part_dir("exchange", "trades")
    return [
        trades_part_001(),
        trades_part_002_gz(),
        csv_file(f"{base}/part-003.csv", TRADE_COLS, []),  # header only
        FileSpec(f"{base}/part-004.csv", b"", "empty", rows_in=0),  # 0 bytes
        FileSpec(
            f"{base}/part-005.tmp",
            b"leftover of an upload\n",
            "rejected",
            rows_in="null-or-count",
            error=".tmp",
        ),
    ]


# --------------------------------------------------------------------------------------------
# exchange/product_events: RFC 4180 quoting, too few / too many fields, nullable column missing

PE_HEADER = "event_id,product_id,event_type,event_at,note"


def product_events_partition() -> list[FileSpec]:
    base = part_dir("exchange", "product_events")
    recs = [
        Rec(
            raw='E1,P1,listed,2026-11-22T08:00:00+08:00,"a, ""quoted"" note"',
            ok={"event_at": ts("2026-11-22 00:00:00"), "note": 'a, "quoted" note'},
        ),
        Rec(
            raw='E2,P1,announced,2026-11-22T00:00:00Z,"multi\nline\r\nnote"',
            ok={"event_type": "announced", "note": "multi\nline\r\nnote"},
        ),
        Rec(raw="E3,P1,delisted,2026-11-22T00:00:00Z,", ok={"note": None}),
        Rec(raw='E3b,P1,delisted,2026-11-22T00:00:00Z,""', ok={"note": None}),
        Rec(raw="E4,P1,delisted,2026-11-22T00:00:00Z", bad=(None, "field")),
        Rec(raw="E5,P1,delisted,2026-11-22T00:00:00Z,n,extra", bad=(None, "field")),
        Rec(raw="E6,P1,Listed,2026-11-22T00:00:00Z,n", bad=("event_type", "Listed")),
        Rec(raw=",P1,listed,2026-11-22T00:00:00Z,n", bad=("event_id", "missing")),
        Rec(raw='E7,"",listed,2026-11-22T00:00:00Z,n', bad=("product_id", "missing")),
        Rec(raw=f"E9,P1,listed,2026-11-22T00:00:00Z,{ODD_SPACES}", ok={"note": ODD_SPACES}),
        Rec(raw="E10,P1,LISTED,2026-11-22T00:00:00Z,", bad=("event_type", "LISTED")),
        Rec(
            raw="E8,\\N,listed,2026-11-22T00:00:00Z,C:\\new\\t\tx",
            ok={"product_id": "\\N", "note": "C:\\new\\t\tx"},
        ),
    ]
    # the records above are already CSV text
    text = PE_HEADER + "\n"
    placed, line = [], 2
    for rec in recs:
        assert rec.raw is not None
        placed.append((line, rec))
        line += rec.raw.replace("\r\n", "\n").count("\n") + 1
        text += rec.raw + "\n"
    events = FileSpec(f"{base}/events.csv", text.encode(), "rows", placed)
    no_note = FileSpec(
        f"{base}/no_note.csv",
        b"event_id,product_id,event_type,event_at\n"
        b"E9,P1,listed,2026-11-22T00:00:00Z\n"
        b"E10,P1,listed,2026-11-22T00:00:00Z\n",
        "rejected",
        [(2, Rec(bad=(None, "note"))), (3, Rec(bad=(None, "note")))],
        error="note",
    )
    return [events, no_note]


# --------------------------------------------------------------------------------------------
# exchange/transfers: files rejected whole

TF_COLS = list(entity("exchange", "transfers").column_names)


def transfer(tid: str, **kw: str) -> dict[str, str]:
    d = {
        "transfer_id": tid,
        "user_id": "u_1",
        "asset": "BTC",
        "direction": "deposit",
        "amount": "1.5",
        "status": "completed",
        "created_at": "2026-11-22T01:00:00Z",
    }
    d.update(kw)
    return d


def transfers_partition() -> list[FileSpec]:
    base = part_dir("exchange", "transfers")
    good = csv_file(
        f"{base}/good.csv",
        TF_COLS,
        [Rec(transfer("X1"), ok={"amount": Decimal("1.5"), "direction": "deposit"})],
    )
    no_status = [c for c in TF_COLS if c != "status"]
    missing = csv_file(
        f"{base}/missing_status.csv",
        no_status,
        [
            Rec(transfer("X2", asset="multi\nline"), bad=(None, "status")),
            BLANK,
            Rec(transfer("X3"), bad=(None, "status")),
        ],
        status="rejected",
        error="status",
    )
    latin1 = FileSpec(
        f"{base}/latin1.csv",
        (",".join(TF_COLS) + "\nX4,u_é,BTC,deposit,1.5,completed,2026-11-22T01:00:00Z\n").encode(
            "latin-1"
        ),
        "rejected",
        rows_in=None,
        error="UTF-8",
    )
    whole = gzip.compress(
        "".join(_csv_line(list(transfer(f"X{i}").values())) + "\n" for i in range(10, 300)).encode()
    )
    trunc = FileSpec(
        f"{base}/trunc.csv.gz", whole[: len(whole) // 2], "rejected", rows_in=None, error="gzip"
    )
    notgz = FileSpec(
        f"{base}/notgzip.csv.gz", b"plain text, not gzip\n", "rejected", rows_in=None, error="gzip"
    )
    unclosed = FileSpec(
        f"{base}/unclosed.csv",
        (
            ",".join(TF_COLS)
            + "\nX5,u_1,BTC,deposit,1.5,completed,2026-11-22T01:00:00Z\n"
            + 'X6,u_1,"BTC,deposit,1.5,completed,2026-11-22T01:00:00Z\n'
            + "X7,u_1,BTC,deposit,1.5,completed,2026-11-22T01:00:00Z\n"
        ).encode(),
        "rejected",
        rows_in="null-or-count",
        error="CSV",
    )
    return [good, missing, latin1, trunc, notgz, unclosed]


# --------------------------------------------------------------------------------------------
# exchange/asset_prices: dates


def asset_prices_partition() -> list[FileSpec]:
    return [
        csv_file(
            f"{part_dir('exchange', 'asset_prices')}/prices.csv",
            ["usd_price", "price_date", "asset"],
            [
                Rec({"asset": "USD", "price_date": "2026-11-22", "usd_price": "1"}, ok={}),
                Rec(
                    {"asset": "BTC", "price_date": "2026-11-22", "usd_price": "27431.50"},
                    ok={"price_date": date(2026, 11, 22), "usd_price": Decimal("27431.5")},
                ),
                Rec(
                    {"asset": "ETH", "price_date": "2026-02-30", "usd_price": "1"},
                    bad=("price_date", "2026-02-30"),
                ),
                Rec(
                    {"asset": "SOL", "price_date": "2026-11-22T00:00:00Z", "usd_price": "1"},
                    bad=("price_date", "2026-11-22T00:00:00Z"),
                ),
                Rec(
                    {"asset": "ADA", "price_date": "2026-11-22", "usd_price": "1,5"},
                    bad=("usd_price", "1,5"),
                ),
            ],
        )
    ]


# --------------------------------------------------------------------------------------------
# exchange/wealth_events and account_balances: two files per partition (for re-deliveries)

WE_COLS = list(entity("exchange", "wealth_events").column_names)


def wealth_file(name: str) -> FileSpec:
    return csv_file(
        f"{part_dir('exchange', 'wealth_events')}/{name}",
        WE_COLS,
        [
            Rec(
                {
                    "event_id": "W1",
                    "user_id": "u_1",
                    "product_id": "EARN-USDT",
                    "event_type": "subscribe",
                    "asset": "USDT",
                    "amount": "500.00",
                    "event_at": "2026-11-22T03:00:00Z",
                },
                ok={"event_id": "W1", "amount": Decimal("500")},
            )
        ],
    )


def balances_file(name: str, users: list[str]) -> FileSpec:
    return csv_file(
        f"{part_dir('exchange', 'account_balances')}/{name}",
        ["equity_usd", "snapshot_date", "user_id"],
        [
            Rec(
                {"user_id": u, "snapshot_date": "2026-11-22", "equity_usd": "10.5"},
                ok={"user_id": u, "equity_usd": Decimal("10.5")},
            )
            for u in users
        ],
    )


# --------------------------------------------------------------------------------------------
# crm/users: BOM + CRLF JSON Lines, nested extra keys, absent nullable keys, integer rules


def user(i: int | str, **kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "user_id": f"u_{i}",
        "registered_at": "2026-11-20T10:00:00Z",
        "country": "US",
        "acquisition_channel": "organic",
        "referrer_user_id": None,
        "kyc_level": 1,
        "email": f"u{i}@example.com",
        "phone": "+1 555 0100",
        "device_id": "d1",
        "signup_ip": "10.0.0.1",
        "updated_at": "2026-11-22T10:00:00Z",
    }
    d.update(kw)
    return d


def without(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in keys}


def users_partition() -> list[FileSpec]:
    base = part_dir("crm", "users")
    users1 = jsonl_file(
        f"{base}/users-1.jsonl",
        [
            Rec(
                user(1, extra={"nested": {"a": [1, {"b": None}]}}, another=5),
                ok={
                    "user_id": "u_1",
                    "kyc_level": 1,
                    "country": "US",
                    "registered_at": ts("2026-11-20 10:00:00"),
                    "referrer_user_id": None,
                },
            ),
            Rec(without(user(2), "phone", "referrer_user_id"), ok={"phone": None}),
            Rec(user(3, kyc_level="1"), bad=("kyc_level", "1")),
            Rec(user(4, kyc_level=7.5), bad=("kyc_level", "7.5")),
            Rec(user(5, kyc_level=3), bad=("kyc_level", "3")),
            Rec(user(6, country="us"), bad=("country", "us")),
            Rec(user(7, country="USA"), bad=("country", "USA")),
            BLANK,
            Rec(user(8, email="", phone=""), ok={"email": "", "phone": ""}),
            Rec(without(user(9), "email"), bad=("email", "missing")),
            Rec(raw="[1, 2, 3]", bad=(None, "object")),
            Rec(raw="{not json", bad=(None, "JSON")),
            Rec(
                user(
                    10,
                    updated_at="2026-11-22T21:45:12+08:00",
                    registered_at="2026-11-19T23:30:00.5-05:30",
                ),
                ok={
                    "updated_at": ts("2026-11-22 13:45:12"),
                    "registered_at": ts("2026-11-20 05:00:00.500000"),
                },
            ),
            Rec(
                user(1, updated_at="2026-11-22T11:00:00Z"),  # same key again: kept
                ok={"user_id": "u_1", "updated_at": ts("2026-11-22 11:00:00")},
            ),
            Rec(user(11, kyc_level=True), bad=("kyc_level", "true")),
            Rec(user(12, acquisition_channel="Organic"), bad=("acquisition_channel", "Organic")),
            Rec(user(13, kyc_level=0, referrer_user_id="u_1"), ok={"kyc_level": 0}),
            Rec(user(14, country=None), bad=("country", "missing")),
            Rec(user(15, updated_at="2026-11-22T10:00:00+0800"), bad=("updated_at", "+0800")),
        ],
        eol="\r\n",
        bom=True,
    )
    users2 = jsonl_file(
        f"{base}/users-2.jsonl.gz",
        [
            Rec(user(20), ok={"user_id": "u_20"}),
            Rec(user(21, country="DE"), ok={"country": "DE"}),
        ],
        gz=True,
    )
    nothing = jsonl_file(
        f"{base}/users-bad.jsonl",
        [
            Rec(raw="not json", bad=(None, "JSON")),
            Rec(raw="{broken", bad=(None, "JSON")),
            BLANK,
            Rec(raw="'single quotes'", bad=(None, "JSON")),
        ],
        status="rejected",
        error="JSON",
    )
    nothing.rows_in = "null-or-count"
    empty = FileSpec(f"{base}/users-empty.jsonl", b"", "empty", rows_in=0)
    return [users1, users2, nothing, empty]


# --------------------------------------------------------------------------------------------
# crm/campaigns: excluded_countries, JSON numbers for decimals


def campaign(i: int, **kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "campaign_id": f"C{i}",
        "campaign_type": "fee_discount",
        "name": "Winter fees",
        "product_line": "spot",
        "target_tier": "all",
        "start_at": "2026-11-01T00:00:00Z",
        "end_at": "2026-12-01T00:00:00+08:00",
        "budget_usd": "1000.50",
        "excluded_countries": ["US", "CN"],
        "updated_at": "2026-11-22T00:00:00Z",
    }
    d.update(kw)
    return d


def campaigns_partition() -> list[FileSpec]:
    exact = json.dumps(campaign(5, budget_usd=0)).replace(
        '"budget_usd": 0', '"budget_usd": 12345678901234567.123456789'
    )
    tenth = json.dumps(campaign(6, budget_usd=0)).replace('"budget_usd": 0', '"budget_usd": 0.1')
    return [
        jsonl_file(
            f"{part_dir('crm', 'campaigns')}/campaigns.jsonl",
            [
                Rec(
                    campaign(1),
                    ok={
                        "budget_usd": Decimal("1000.50"),
                        "excluded_countries": ["US", "CN"],
                        "end_at": ts("2026-11-30 16:00:00"),
                    },
                ),
                Rec(
                    without(campaign(2, excluded_countries=[]), "product_line"),
                    ok={"excluded_countries": [], "product_line": None},
                ),
                Rec(campaign(3, excluded_countries="US"), bad=("excluded_countries", "US")),
                Rec(campaign(4, excluded_countries=["us"]), bad=("excluded_countries", "us")),
                Rec(raw=exact, ok={"budget_usd": Decimal("12345678901234567.123456789")}),
                Rec(raw=tenth, ok={"budget_usd": Decimal("0.1")}),
                Rec(campaign(7, budget_usd="1e5"), bad=("budget_usd", "1e5")),
                Rec(campaign(8, excluded_countries=None), bad=("excluded_countries", "missing")),
                Rec(campaign(9, product_line=""), bad=("product_line", "''")),
                Rec(campaign(10, target_tier="tier"), bad=("target_tier", "tier")),
                Rec(campaign(11, budget_usd=100), ok={"budget_usd": Decimal("100")}),
                Rec(campaign(12, budget_usd="-0.5"), ok={"budget_usd": Decimal("-0.5")}),
                Rec(campaign(13, budget_usd=".5"), bad=("budget_usd", ".5")),
            ],
        )
    ]


# --------------------------------------------------------------------------------------------
# crm/kyc_events, crm/marketing_spend, feedback/*


def kyc_partition() -> list[FileSpec]:
    def ev(i: int, level: Any) -> dict[str, Any]:
        return {
            "event_id": f"KY{i}",
            "user_id": "u_1",
            "kyc_level": level,
            "status": "approved",
            "event_at": "2026-11-22T00:00:00Z",
        }

    return [
        jsonl_file(
            f"{part_dir('crm', 'kyc_events')}/k.jsonl",
            [
                Rec(ev(1, 0), bad=("kyc_level", "0")),
                Rec(ev(2, 2), ok={"kyc_level": 2}),
                Rec(ev(3, 1), ok={"kyc_level": 1}),
                Rec(ev(4, "2"), bad=("kyc_level", "2")),
            ],
        )
    ]


def spend_partition() -> list[FileSpec]:
    return [
        jsonl_file(
            f"{part_dir('crm', 'marketing_spend')}/spend.jsonl",
            [
                Rec(
                    {"spend_date": "2026-11-22", "channel": "kol", "spend_usd": 1234.56},
                    ok={"spend_usd": Decimal("1234.56"), "spend_date": date(2026, 11, 22)},
                ),
                Rec(
                    {"spend_date": "2026-11-22", "channel": "organic", "spend_usd": "0"},
                    ok={"spend_usd": Decimal("0")},
                ),
                Rec(
                    {"spend_date": "2026/11/22", "channel": "affiliate", "spend_usd": "1"},
                    bad=("spend_date", "2026/11/22"),
                ),
                Rec(
                    {"spend_date": "2026-11-22", "channel": "tv", "spend_usd": "1"},
                    bad=("channel", "tv"),
                ),
            ],
        )
    ]


def survey(i: int, **kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "response_id": f"R{i}",
        "user_id": "u_1",
        "survey": "nps",
        "score": 5,
        "product_line": "spot",
        "comment": "fine",
        "submitted_at": "2026-11-22T00:00:00Z",
    }
    d.update(kw)
    return d


def surveys_partition() -> list[FileSpec]:
    return [
        jsonl_file(
            f"{part_dir('feedback', 'survey_responses')}/responses.jsonl",
            [
                Rec(survey(1, score=0), ok={"score": 0}),
                Rec(survey(2, score=10), ok={"score": 10}),
                Rec(survey(3, score=11), bad=("score", "11")),
                Rec(survey(4, survey="csat", score=5), ok={"survey": "csat", "score": 5}),
                Rec(survey(5, survey="csat", score=6), bad=("score", "6")),
                Rec(survey(6, survey="csat", score=0), bad=("score", "0")),
                Rec(
                    without(
                        survey(7, survey="csat", score=1), "user_id", "product_line", "comment"
                    ),
                    ok={"user_id": None, "product_line": None, "comment": None},
                ),
                Rec(survey(8, score=-1), bad=("score", "-1")),
                Rec(survey(9, user_id="", comment=""), ok={"user_id": "", "comment": ""}),
                Rec(survey(10, score="5"), bad=("score", "5")),
                Rec(survey(11, score=7.0), bad=("score", "7.0")),
                Rec(survey(12, survey="NPS"), bad=("survey", "NPS")),
            ],
        )
    ]


def ticket(i: int, **kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "ticket_id": f"K{i}",
        "user_id": "u_1",
        "channel": "chat",
        "category": "fees",
        "product_id": None,
        "priority": "low",
        "created_at": "2026-11-22T00:00:00Z",
        "first_response_at": None,
        "resolved_at": None,
        "csat": None,
        "subject": "fees?",
        "body": 'why, "exactly"\nsecond line',
        "updated_at": "2026-11-22T01:00:00Z",
    }
    d.update(kw)
    return d


def tickets_partition() -> list[FileSpec]:
    return [
        jsonl_file(
            f"{part_dir('feedback', 'tickets')}/tickets.jsonl",
            [
                Rec(
                    without(
                        ticket(1),
                        "csat",
                        "first_response_at",
                        "resolved_at",
                        "product_id",
                        "user_id",
                    ),
                    ok={"csat": None, "first_response_at": None, "user_id": None},
                ),
                Rec(
                    ticket(2, csat=5, first_response_at="2026-11-22T00:10:00.123456321Z"),
                    ok={"csat": 5, "first_response_at": ts("2026-11-22 00:10:00.123456")},
                ),
                Rec(ticket(3, csat=0), bad=("csat", "0")),
                Rec(ticket(4, first_response_at=""), bad=("first_response_at", "''")),
                Rec(ticket(5, created_at="2026-11-22T25:00:00Z"), bad=("created_at", "25:00")),
                Rec(
                    ticket(6, subject=""), ok={"subject": "", "body": 'why, "exactly"\nsecond line'}
                ),
                Rec(ticket(7, priority="Urgent"), bad=("priority", "Urgent")),
                Rec(ticket(8, subject=None), bad=("subject", "missing")),
                Rec(
                    # U+2028, U+2029, NEL, VT, FF, FS unescaped: valid JSON, not line breaks
                    raw=json.dumps(ticket(9, body=ODD_SPACES), ensure_ascii=False),
                    ok={"body": ODD_SPACES},
                ),
                Rec(ticket(10, priority="LOW"), bad=("priority", "LOW")),
            ],
        )
    ]


# --------------------------------------------------------------------------------------------
# Landing zone, runs and snapshots


def write(landing: Path, specs: list[FileSpec]) -> None:
    for s in specs:
        p = landing / s.rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(s.data)


def success(landing: Path, partition: str) -> None:
    (landing / partition / "_SUCCESS").write_bytes(b"")


def stage1_specs() -> dict[str, list[FileSpec]]:
    """Complete partitions of the first delivery, by partition folder."""
    parts = {
        part_dir("exchange", "trades"): trades_partition(),
        part_dir("exchange", "product_events"): product_events_partition(),
        part_dir("exchange", "transfers"): transfers_partition(),
        part_dir("exchange", "asset_prices"): asset_prices_partition(),
        part_dir("exchange", "wealth_events"): [wealth_file("a.csv"), wealth_file("b.csv")],
        part_dir("exchange", "account_balances"): [
            balances_file("a.csv", ["u_1"]),
            balances_file("b.csv", ["u_2", "u_3"]),
        ],
        part_dir("crm", "users"): users_partition(),
        part_dir("crm", "campaigns"): campaigns_partition(),
        part_dir("crm", "kyc_events"): kyc_partition(),
        part_dir("crm", "marketing_spend"): spend_partition(),
        part_dir("feedback", "survey_responses"): surveys_partition(),
        part_dir("feedback", "tickets"): tickets_partition(),
    }
    return parts


LATE_DT = "2026-11-23"


def late_trades() -> FileSpec:
    return csv_file(
        f"{part_dir('exchange', 'trades', LATE_DT)}/a.csv",
        TRADE_COLS,
        [Rec(trade("T-200", executed_at="2026-11-20T23:00:00-02:00"), ok={"trade_id": "T-200"})],
    )


def run_ingest(landing: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXOPS, "ingest", "--landing", str(landing)],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )


@dataclass
class Snap:
    loads: list[dict[str, Any]]
    quarantine: list[dict[str, Any]]
    raw: dict[str, list[dict[str, Any]]]
    proc: subprocess.CompletedProcess[str]

    @property
    def current(self) -> list[dict[str, Any]]:
        return [r for r in self.loads if r["superseded_by"] is None]

    def current_load(self, rel: str) -> dict[str, Any]:
        rows = [r for r in self.current if r["file_path"].endswith(rel)]
        assert len(rows) == 1, f"{rel}: expected one current audit.loads row, got {rows}"
        return rows[0]

    def raw_rows(self, rel: str) -> list[dict[str, Any]]:
        table = "_".join(rel.split("/")[:2])
        return [r for r in self.raw[table] if r["_file"].endswith(rel)]

    def quarantined(self, rel: str) -> list[dict[str, Any]]:
        return [q for q in self.quarantine if q["file_path"].endswith(rel)]

    @property
    def output(self) -> str:
        return self.proc.stdout + self.proc.stderr


def snapshot(url: str, proc: subprocess.CompletedProcess[str]) -> Snap:
    with psycopg.connect(url, row_factory=dict_row) as c:
        loads = c.execute("select * from audit.loads order by load_id, file_path").fetchall()
        quarantine = c.execute(
            "select load_id, source, entity, partition_date, file_path, line, column_name,"
            " reason, raw_text from audit.quarantine order by file_path, line"
        ).fetchall()
        raw = {}
        for e in ENTITIES:
            exists = c.execute("select to_regclass(%s) is not null as ok", (e.qualified_table,))
            if exists.fetchone()["ok"]:
                raw[e.table] = c.execute(
                    f"select * from {e.qualified_table} order by _dt, _file, _line"
                ).fetchall()
            else:
                raw[e.table] = []
    return Snap(loads, quarantine, raw, proc)


@dataclass
class Review:
    landing: Path
    specs1: dict[str, list[FileSpec]]
    specs3: dict[str, list[FileSpec]]
    s1: Snap
    s2: Snap
    s3: Snap
    s4: Snap


@pytest.fixture(scope="module")
def review(warehouse_url: str, tmp_path_factory: pytest.TempPathFactory) -> Review:
    landing = tmp_path_factory.mktemp("review") / "landing"
    specs1 = stage1_specs()
    for partition, specs in specs1.items():
        write(landing, specs)
        success(landing, partition)
    # a partition still being written (no _SUCCESS)
    write(landing, [late_trades()])
    # a folder not named dt=YYYY-MM-DD, with a _SUCCESS: ignored with a warning
    bad_folder = landing / "exchange" / "trades" / "2026-11-24"
    bad_folder.mkdir(parents=True)
    (bad_folder / "a.csv").write_text(",".join(TRADE_COLS) + "\n")
    (bad_folder / "_SUCCESS").write_bytes(b"")

    s1 = snapshot(warehouse_url, run_ingest(landing))
    s2 = snapshot(warehouse_url, run_ingest(landing))

    # ---- re-deliveries
    specs3 = {k: list(v) for k, v in specs1.items()}
    trades_dir = part_dir("exchange", "trades")
    (landing / trades_dir / "part-005.tmp").unlink()
    new001 = csv_file(
        f"{trades_dir}/part-001.csv",
        TRADE_COLS,
        [
            Rec(trade("T-1", price="2", taker_side="sell"), ok={"price": Decimal("2")}),
            Rec(trade("T-300", taker_side="SELL"), bad=("taker_side", "SELL")),
        ],
    )
    specs3[trades_dir] = [new001, *[s for s in specs1[trades_dir][1:4]]]
    write(landing, [new001])
    success(landing, trades_dir)

    users_dir = part_dir("crm", "users")
    old = landing / users_dir / "users-1.jsonl"
    old.rename(landing / users_dir / "users-1-renamed.jsonl")
    renamed = specs1[users_dir][0]
    renamed = FileSpec(
        renamed.rel.replace("users-1.jsonl", "users-1-renamed.jsonl"),
        renamed.data,
        renamed.status,
        renamed.recs,
    )
    specs3[users_dir] = [renamed, *specs1[users_dir][1:]]
    success(landing, users_dir)

    success(landing, part_dir("exchange", "trades", LATE_DT))
    specs3[part_dir("exchange", "trades", LATE_DT)] = [late_trades()]

    tf_dir = part_dir("exchange", "transfers")
    shutil.rmtree(landing / tf_dir)
    empty_tf = FileSpec(f"{tf_dir}/empty.csv", b"", "empty", rows_in=0)
    write(landing, [empty_tf])
    success(landing, tf_dir)
    specs3[tf_dir] = [empty_tf]

    # being re-written: _SUCCESS removed, file replaced -> nothing changes yet
    ap_dir = part_dir("exchange", "asset_prices")
    (landing / ap_dir / "_SUCCESS").unlink()
    (landing / ap_dir / "prices.csv").write_text("asset,price_date,usd_price\n")

    # _SUCCESS rewritten, files identical -> not a re-delivery
    success(landing, part_dir("crm", "campaigns"))

    # one of two identical files removed -> re-delivery
    we_dir = part_dir("exchange", "wealth_events")
    (landing / we_dir / "b.csv").unlink()
    success(landing, we_dir)
    specs3[we_dir] = [wealth_file("a.csv")]

    # two files swap names -> re-delivery
    ab_dir = part_dir("exchange", "account_balances")
    a, b = landing / ab_dir / "a.csv", landing / ab_dir / "b.csv"
    a_bytes, b_bytes = a.read_bytes(), b.read_bytes()
    a.write_bytes(b_bytes)
    b.write_bytes(a_bytes)
    success(landing, ab_dir)
    specs3[ab_dir] = [balances_file("a.csv", ["u_2", "u_3"]), balances_file("b.csv", ["u_1"])]

    s3 = snapshot(warehouse_url, run_ingest(landing))
    s4 = snapshot(warehouse_url, run_ingest(landing))
    return Review(landing, specs1, specs3, s1, s2, s3, s4)


# --------------------------------------------------------------------------------------------
# Checks


def all_specs(specs: dict[str, list[FileSpec]]) -> list[FileSpec]:
    return [s for v in specs.values() for s in v]


def check_file(snap: Snap, spec: FileSpec) -> list[str]:
    """Everything the contract says about one file; returns the discrepancies."""
    errs: list[str] = []
    try:
        load = snap.current_load(spec.rel)
    except AssertionError as exc:
        return [str(exc)]
    n_rows, n_good, n_bad = len(spec.rows), len(spec.good), len(spec.bad)
    where = spec.rel

    if spec.status == "rejected":
        if load["status"] != "rejected":
            errs.append(f"{where}: status {load['status']!r}, expected 'rejected'")
        if not load["error"] or (spec.error and spec.error.lower() not in load["error"].lower()):
            errs.append(
                f"{where}: rejection reason {load['error']!r} should mention {spec.error!r}"
            )
        if load["rows_loaded"] != 0:
            errs.append(f"{where}: rejected file loaded {load['rows_loaded']} rows")
        if spec.rows_in is None and load["rows_in_file"] is not None:
            errs.append(f"{where}: uncountable file has rows_in_file {load['rows_in_file']}")
        if spec.rows_in == "count" and load["rows_in_file"] != n_rows:
            errs.append(f"{where}: rows_in_file {load['rows_in_file']}, expected {n_rows}")
        if load["rows_in_file"] is not None:
            if load["rows_quarantined"] != load["rows_in_file"]:
                errs.append(f"{where}: rejected rows not all counted as quarantined: {load}")
            if (
                spec.rows_in in ("count", "null-or-count")
                and n_rows
                and (load["rows_in_file"] != n_rows)
            ):
                errs.append(f"{where}: rows_in_file {load['rows_in_file']}, expected {n_rows}")
    else:
        expected = (n_rows, n_good, n_bad)
        got = (load["rows_in_file"], load["rows_loaded"], load["rows_quarantined"])
        if got != expected:
            errs.append(
                f"{where}: (rows_in_file, loaded, quarantined) = {got}, expected {expected}"
            )
        if spec.status == "empty" and load["status"] == "rejected":
            errs.append(f"{where}: an empty delivery must not be rejected: {load}")

    # raw: exactly the good records, at their physical lines, with exact values
    raw = snap.raw_rows(spec.rel)
    if len(raw) != load["rows_loaded"]:
        errs.append(f"{where}: {len(raw)} raw rows, audit says {load['rows_loaded']}")
    by_line = {r["_line"]: r for r in raw}
    for line, rec in spec.good:
        row = by_line.get(line)
        if row is None:
            errs.append(f"{where}:{line}: expected a raw row, found none (lines {sorted(by_line)})")
            continue
        if row["_load_id"] != load["load_id"] or str(row["_dt"]) != spec.rel.split("dt=")[1][:10]:
            errs.append(f"{where}:{line}: meta columns {row['_load_id']}/{row['_dt']}")
        for col, want in rec.ok.items():
            if row[col] != want or type(row[col]) is not type(want):
                errs.append(f"{where}:{line}: {col} = {row[col]!r}, expected {want!r}")
    for line in set(by_line) - {ln for ln, _ in spec.good}:
        errs.append(f"{where}:{line}: unexpected raw row {by_line[line]}")

    # quarantine: exactly the bad records, at their physical lines, with column and reason
    quar = [q for q in snap.quarantined(spec.rel) if q["load_id"] == load["load_id"]]
    if len(quar) != load["rows_quarantined"]:
        errs.append(f"{where}: {len(quar)} quarantine rows, audit says {load['rows_quarantined']}")
    q_by_line = {q["line"]: q for q in quar}
    for line, rec in spec.bad:
        q = q_by_line.get(line)
        if q is None:
            errs.append(f"{where}:{line}: expected in quarantine; quarantined {sorted(q_by_line)}")
            continue
        col, needle = rec.bad  # type: ignore[misc]
        if spec.status != "rejected" and q["column_name"] != col:
            errs.append(f"{where}:{line}: quarantine column {q['column_name']!r}, expected {col!r}")
        reason = q["reason"] or ""
        if col and spec.status != "rejected" and col not in reason:
            errs.append(f"{where}:{line}: reason {reason!r} does not name column {col!r}")
        if needle and needle.lower() not in reason.lower():
            errs.append(f"{where}:{line}: reason {reason!r} does not mention {needle!r}")
    if spec.status == "rejected" and not spec.recs:
        return errs  # rows not described: only the counts above are checked
    for line in set(q_by_line) - {ln for ln, _ in spec.bad}:
        errs.append(f"{where}:{line}: unexpected quarantine row {q_by_line[line]['reason']!r}")
    return errs


def check_accounting(snap: Snap) -> list[str]:
    """Global reconciliation of audit.loads, audit.quarantine and the raw tables."""
    errs = []
    for r in snap.current:
        if r["rows_in_file"] is not None and (
            r["rows_in_file"] != r["rows_loaded"] + r["rows_quarantined"]
        ):
            errs.append(f"{r['file_path']}: rows_in_file != loaded + quarantined: {r}")
    for e in ENTITIES:
        cur = [r for r in snap.current if (r["source"], r["entity"]) == (e.source, e.name)]
        loaded = sum(r["rows_loaded"] for r in cur)
        if len(snap.raw[e.table]) != loaded:
            errs.append(f"{e.table}: {len(snap.raw[e.table])} raw rows, current loads {loaded}")
        current_ids = {r["load_id"] for r in cur}
        stale = [r for r in snap.raw[e.table] if r["_load_id"] not in current_ids]
        if stale:
            errs.append(f"{e.table}: {len(stale)} raw rows from superseded loads")
    current_q = sum(r["rows_quarantined"] for r in snap.current)
    current_ids = {r["load_id"] for r in snap.current}
    q_cur = [q for q in snap.quarantine if q["load_id"] in current_ids]
    if len(q_cur) != current_q:
        errs.append(f"quarantine has {len(q_cur)} rows for current loads, audit says {current_q}")
    return errs


def landing_files(landing: Path) -> set[str]:
    out = set()
    for p in landing.rglob("*"):
        if p.is_file() and p.name != "_SUCCESS" and p.parent.name.startswith("dt="):
            if (p.parent / "_SUCCESS").exists():
                out.add(p.relative_to(landing).as_posix())
    return out


def current_paths(snap: Snap) -> set[str]:
    return {r["file_path"] for r in snap.current}


# --------------------------------------------------------------------------------------------
# Tests: first delivery


@pytest.mark.parametrize(
    "partition",
    [
        part_dir("exchange", "trades"),
        part_dir("exchange", "product_events"),
        part_dir("exchange", "transfers"),
        part_dir("exchange", "asset_prices"),
        part_dir("exchange", "wealth_events"),
        part_dir("exchange", "account_balances"),
        part_dir("crm", "users"),
        part_dir("crm", "campaigns"),
        part_dir("crm", "kyc_events"),
        part_dir("crm", "marketing_spend"),
        part_dir("feedback", "survey_responses"),
        part_dir("feedback", "tickets"),
    ],
)
def test_first_delivery_every_file_accounts_for_every_row(review: Review, partition: str) -> None:
    errs = []
    for spec in review.specs1[partition]:
        errs += check_file(review.s1, spec)
    assert not errs, "\n".join(errs)


def test_first_delivery_reconciles_globally(review: Review) -> None:
    assert not check_accounting(review.s1), "\n".join(check_accounting(review.s1))
    # every file of a complete partition has a load row, and nothing else does
    expected = {s.rel for s in all_specs(review.specs1)}
    assert current_paths(review.s1) >= expected
    assert not any(LATE_DT in p or "2026-11-24" in p for p in current_paths(review.s1))


def test_first_run_exit_code_and_messages(review: Review) -> None:
    proc, out = review.s1.proc, review.s1.output
    assert proc.returncode == 0, out  # bad data is not a failed run
    for spec in all_specs(review.specs1):
        if spec.status == "rejected":
            assert spec.rel in out, f"rejected file {spec.rel} not named in the output"
    assert "2026-11-23" in out  # the incomplete partition is reported
    assert "exchange/trades/2026-11-24" in out and "warn" in out.lower()


def test_partition_without_success_is_not_loaded(review: Review) -> None:
    assert not [r for r in review.s1.raw["exchange_trades"] if str(r["_dt"]) == LATE_DT]
    assert not [r for r in review.s1.loads if str(r["partition_date"]) == LATE_DT]


def test_quarantine_rows_carry_source_entity_partition_and_text(review: Review) -> None:
    for q in review.s1.quarantine:
        src, ent = q["file_path"].split("/")[:2]
        assert (q["source"], q["entity"]) == (src, ent)
        assert str(q["partition_date"]) in q["file_path"]
        assert q["line"] >= 1 and q["reason"]
    # the offending text is kept for a bad row (physical line 8 of part-001 is T-6 'BUY')
    t6 = [q for q in review.s1.quarantined("part-001.csv") if q["column_name"] == "taker_side"]
    assert t6 and "T-6" in (t6[0]["raw_text"] or "")


def test_duplicate_keys_within_a_delivery_are_all_kept_in_raw(review: Review) -> None:
    t1 = [r for r in review.s1.raw["exchange_trades"] if r["trade_id"] == "T-1"]
    assert sorted(r["price"] for r in t1) == [Decimal("-0.5"), Decimal("27431.5")]
    u1 = [r for r in review.s1.raw["crm_users"] if r["user_id"] == "u_1"]
    assert len(u1) == 2
    w1 = [r for r in review.s1.raw["exchange_wealth_events"] if r["event_id"] == "W1"]
    assert len(w1) == 2  # two identical files in one partition


def test_second_run_changes_nothing(review: Review) -> None:
    s1, s2 = review.s1, review.s2
    assert s2.proc.returncode == 0, s2.output
    assert s2.loads == s1.loads
    assert s2.quarantine == s1.quarantine
    assert s2.raw == s1.raw


# --------------------------------------------------------------------------------------------
# Tests: re-deliveries


def test_redeliveries_account_for_every_row(review: Review) -> None:
    errs = check_accounting(review.s3)
    for spec in all_specs(review.specs3):
        if spec.source == "exchange" and spec.entity == "asset_prices":
            continue  # not re-delivered (no _SUCCESS): checked below
        errs += check_file(review.s3, spec)
    assert not errs, "\n".join(errs)
    assert review.s3.proc.returncode == 0, review.s3.output


def test_redelivery_with_changed_content_replaces_the_partition(review: Review) -> None:
    rows = [r for r in review.s3.raw["exchange_trades"] if str(r["_dt"]) == DT]
    assert sorted(r["trade_id"] for r in rows) == ["T-1", "T-100", "T-101"]
    assert [r["price"] for r in rows if r["trade_id"] == "T-1"] == [Decimal("2")]
    # the earlier load rows are kept but superseded, the .tmp file no longer current
    old = [r for r in review.s3.loads if r["file_path"].endswith("part-001.csv")]
    assert len(old) == 2 and sum(r["superseded_by"] is None for r in old) == 1
    assert not any(p.endswith("part-005.tmp") for p in current_paths(review.s3))


def test_redelivery_under_new_file_names_replaces(review: Review) -> None:
    files = {r["_file"] for r in review.s3.raw["crm_users"]}
    assert not any(f.endswith("/users-1.jsonl") for f in files)
    assert any(f.endswith("/users-1-renamed.jsonl") for f in files)
    assert len(review.s3.raw["crm_users"]) == len(review.s1.raw["crm_users"])
    current_ids = {r["load_id"] for r in review.s3.current}
    current_q = [q for q in review.s3.quarantine if q["load_id"] in current_ids]
    assert not any(q["file_path"].endswith("/users-1.jsonl") for q in current_q)
    assert any(q["file_path"].endswith("/users-1-renamed.jsonl") for q in current_q)


def test_removing_one_of_two_identical_files_is_a_redelivery(review: Review) -> None:
    rows = review.s3.raw["exchange_wealth_events"]
    assert [r["_file"].rsplit("/", 1)[1] for r in rows] == ["a.csv"]


def test_files_swapping_names_is_a_redelivery(review: Review) -> None:
    rows = review.s3.raw["exchange_account_balances"]
    got = sorted((r["user_id"], r["_file"].rsplit("/", 1)[1]) for r in rows)
    assert got == [("u_1", "b.csv"), ("u_2", "a.csv"), ("u_3", "a.csv")]


def test_empty_redelivery_removes_the_partition_rows(review: Review) -> None:
    assert review.s1.raw["exchange_transfers"]
    assert review.s3.raw["exchange_transfers"] == []
    cur = [r for r in review.s3.current if r["entity"] == "transfers"]
    assert [(r["file_path"].rsplit("/", 1)[1], r["rows_in_file"]) for r in cur] == [
        ("empty.csv", 0)
    ]


def test_partition_being_rewritten_without_success_keeps_its_rows(review: Review) -> None:
    assert review.s3.raw["exchange_asset_prices"] == review.s1.raw["exchange_asset_prices"]
    cur1 = [r for r in review.s1.current if r["entity"] == "asset_prices"]
    cur3 = [r for r in review.s3.current if r["entity"] == "asset_prices"]
    assert cur1 == cur3


def test_rewritten_success_marker_alone_is_not_a_redelivery(review: Review) -> None:
    cur1 = [r for r in review.s1.current if r["entity"] == "campaigns"]
    cur3 = [r for r in review.s3.current if r["entity"] == "campaigns"]
    assert cur1 == cur3
    assert review.s3.raw["crm_campaigns"] == review.s1.raw["crm_campaigns"]


def test_late_partition_loads_once_complete(review: Review) -> None:
    rows = [r for r in review.s3.raw["exchange_trades"] if str(r["_dt"]) == LATE_DT]
    assert [r["trade_id"] for r in rows] == ["T-200"]
    assert rows[0]["executed_at"] == ts("2026-11-21 01:00:00")


def test_run_after_redeliveries_changes_nothing(review: Review) -> None:
    s3, s4 = review.s3, review.s4
    assert s4.proc.returncode == 0, s4.output
    assert (s4.loads, s4.quarantine, s4.raw) == (s3.loads, s3.quarantine, s3.raw)
    complete = {
        p for p in current_paths(s4) if (review.landing / p).parent.joinpath("_SUCCESS").exists()
    }
    assert complete == landing_files(review.landing)


# --------------------------------------------------------------------------------------------
# An unreadable file is a rejected file, not a failed partition


def test_unreadable_file_is_rejected_and_the_rest_of_the_partition_loads(
    review: Review, warehouse_url: str, tmp_path: Path
) -> None:
    # runs after the staged runs above (it needs `review`), on its own landing root; a
    # partition date in the past, so the run's date (the clock) never holds it as future
    landing = tmp_path / "landing"
    part = part_dir("exchange", "trades", "2026-11-11")
    good = csv_file(f"{part}/a.csv", TRADE_COLS, [Rec(trade("T-900"), ok={})])
    write(landing, [good])
    (landing / part / "gone.csv").symlink_to(tmp_path / "does-not-exist.csv")
    success(landing, part)
    proc = run_ingest(landing)
    snap = snapshot(warehouse_url, proc)
    assert proc.returncode == 0, snap.output
    assert not check_file(snap, good), "\n".join(check_file(snap, good))
    gone = snap.current_load(f"{part}/gone.csv")
    assert gone["status"] == "rejected" and gone["rows_loaded"] == 0
    assert gone["error"] == "not a regular file: a symbolic link, never followed"
