"""Ingestion against a real PostgreSQL: round trips, bad deliveries, re-deliveries, reruns."""

from __future__ import annotations

import gzip
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from exops.contract import ENTITIES
from exops.ingest import IngestError, ensure_raw_tables, ingest

D1 = date(2026, 1, 2)
D2 = date(2026, 1, 3)

CSV = {
    "products": (
        "product_id,product_line,base_asset,quote_asset,display_name\n"
        "BTC-USDT,spot,BTC,USDT,Bitcoin / Tether\n"
        'ETH-PERP,derivatives,ETH,USDT,"ETH perpetual, USDT-margined"\n'
    ),
    "product_events": (
        "event_id,product_id,event_type,event_at,note\n"
        "PE1,BTC-USDT,listed,2026-01-02T08:00:00+08:00,\n"
        'PE2,ETH-PERP,iteration_released,2026-01-01T23:30:00-02:00,"v2\nwith ""notes"""\n'
    ),
    "trades": (
        "trade_id,product_id,executed_at,price,quantity,quote_amount,taker_side,"
        "maker_user_id,taker_user_id,maker_fee,taker_fee\n"
        "T1,BTC-USDT,2026-01-02T21:45:12.123456789+08:00,27431.5,0.00012,3.291780,buy,"
        "u_1,u_2,-0.000329178,0.00164589\n"
        "T2,BTC-USDT,2026-01-02T13:45:12Z,0.1,3,0.3,sell,u_2,u_1,0,0.0003\n"
        "T3,ETH-PERP,2026-01-02T00:00:00.5-05:00,12345678901234567890.123456789012,1,"
        "12345678901234567890.123456789012,buy,u_3,u_1,0.1,0.2\n"
    ),
    "transfers": (
        "transfer_id,user_id,asset,direction,amount,status,created_at\n"
        "X1,u_1,USDT,deposit,1000,completed,2026-01-02T01:00:00Z\n"
        "X2,u_2,BTC,withdrawal,0.5,failed,2026-01-02T02:00:00Z\n"
    ),
    "wealth_events": (
        "event_id,user_id,product_id,event_type,asset,amount,event_at\n"
        "W1,u_1,EARN-USDT,subscribe,USDT,500.00,2026-01-02T03:00:00Z\n"
    ),
    "asset_prices": (
        "asset,price_date,usd_price\n"
        "USD,2026-01-02,1\n"
        "BTC,2026-01-02,94000.12\n"
        "USDT,2026-01-02,0.9998\n"
    ),
    "account_balances": (
        "user_id,snapshot_date,equity_usd\nu_1,2026-01-02,1500.5\nu_2,2026-01-02,20\n"
    ),
}

JSONL = {
    ("crm", "users"): [
        {
            "user_id": "u_1",
            "registered_at": "2026-01-01T20:00:00-08:00",
            "country": "SG",
            "acquisition_channel": "kol",
            "referrer_user_id": None,
            "kyc_level": 2,
            "email": "a@example.com",
            "phone": "+65 1234",
            "device_id": "d1",
            "signup_ip": "10.0.0.1",
            "updated_at": "2026-01-02T00:00:00Z",
            "new_field": {"nested": [1, {"deep": True}]},
        },
        {
            "user_id": "u_2",
            "registered_at": "2026-01-02T00:00:00Z",
            "country": "CN",
            "acquisition_channel": "referral",
            "referrer_user_id": "u_1",
            "kyc_level": 0,
            "email": "",
            "device_id": "d2",
            "signup_ip": "10.0.0.2",
            "updated_at": "2026-01-02T00:00:00Z",
        },
    ],
    ("crm", "kyc_events"): [
        {
            "event_id": "K1",
            "user_id": "u_1",
            "kyc_level": 1,
            "status": "approved",
            "event_at": "2026-01-02T05:00:00Z",
        }
    ],
    ("crm", "campaigns"): [
        {
            "campaign_id": "C1",
            "campaign_type": "trading_competition",
            "name": "New year cup",
            "product_line": None,
            "target_tier": "all",
            "start_at": "2026-01-01T00:00:00Z",
            "end_at": "2026-01-31T00:00:00Z",
            "budget_usd": 50000.25,
            "excluded_countries": ["US", "CN"],
            "updated_at": "2026-01-02T00:00:00Z",
        },
        {
            "campaign_id": "C2",
            "campaign_type": "fee_discount",
            "name": "Spot fees",
            "product_line": "spot",
            "target_tier": "new",
            "start_at": "2026-01-01T00:00:00Z",
            "end_at": "2026-02-01T00:00:00Z",
            "budget_usd": 1e3,
            "excluded_countries": [],
            "updated_at": "2026-01-02T00:00:00Z",
        },
    ],
    ("crm", "campaign_enrollments"): [
        {"campaign_id": "C1", "user_id": "u_1", "enrolled_at": "2026-01-02T06:00:00Z"},
        {"campaign_id": "C1", "user_id": "u_1", "enrolled_at": "2026-01-02T06:00:00Z"},
    ],
    ("crm", "rewards"): [
        {
            "reward_id": "R1",
            "campaign_id": "C1",
            "user_id": "u_1",
            "reward_type": "prize",
            "amount_usd": 0.1,
            "paid_at": "2026-01-02T07:00:00Z",
        }
    ],
    ("crm", "marketing_spend"): [
        {"spend_date": "2026-01-02", "channel": "paid_search", "spend_usd": "1200.50"},
        {"spend_date": "2026-01-02", "channel": "kol", "spend_usd": 300},
    ],
    ("feedback", "tickets"): [
        {
            "ticket_id": "TK1",
            "user_id": None,
            "channel": "chat",
            "category": "fees",
            "product_id": None,
            "priority": "high",
            "created_at": "2026-01-02T08:00:00Z",
            "first_response_at": None,
            "resolved_at": None,
            "csat": None,
            "subject": "Fee?",
            "body": "Why\tso high?\nReally",
            "updated_at": "2026-01-02T08:00:00Z",
        }
    ],
    ("feedback", "survey_responses"): [
        {
            "response_id": "S1",
            "user_id": "u_1",
            "survey": "nps",
            "score": 0,
            "product_line": "spot",
            "comment": None,
            "submitted_at": "2026-01-02T09:00:00Z",
        },
        {
            "response_id": "S2",
            "survey": "csat",
            "score": 5,
            "submitted_at": "2026-01-02T09:00:00Z",
        },
    ],
}

EXPECTED_ROWS = {
    **{("exchange", name): text.count("\n") - 1 - ("\nwith" in text) for name, text in CSV.items()},
    **{key: len(records) for key, records in JSONL.items()},
}


def put(landing: Path, source: str, ent: str, dt: date, name: str, data: str | bytes) -> Path:
    part = landing / source / ent / f"dt={dt.isoformat()}"
    part.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    if name.endswith(".gz"):
        raw = gzip.compress(raw)
    (part / name).write_bytes(raw)
    return part


def done(part: Path) -> None:
    (part / "_SUCCESS").write_bytes(b"")


def jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def full_landing(landing: Path, dt: date = D1) -> None:
    for name, text in CSV.items():
        done(put(landing, "exchange", name, dt, "part-0.csv", text))
    for (source, name), records in JSONL.items():
        done(put(landing, source, name, dt, "part-0.jsonl", jsonl(records)))


@pytest.fixture
def db(warehouse_url: str) -> Iterator[psycopg.Connection]:
    """A connection to the module's database, with raw and audit emptied first."""
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        ensure_raw_tables(conn)
        tables = [e.qualified_table for e in ENTITIES]
        tables += ["audit.loads", "audit.quarantine", "audit.partitions"]
        conn.execute(f"truncate {', '.join(tables)}, audit.pending_partitions")
        yield conn


def count(conn: psycopg.Connection, sql: str, *args) -> int:
    return conn.execute(sql, args).fetchone()[0]


def assert_reconciled(conn: psycopg.Connection) -> None:
    """audit.loads (current) sums equal raw and quarantine counts, per entity and file."""
    for e in ENTITIES:
        loaded = count(
            conn,
            "select coalesce(sum(rows_loaded), 0) from audit.loads"
            " where source = %s and entity = %s and superseded_by is null",
            e.source,
            e.name,
        )
        assert loaded == count(conn, f"select count(*) from {e.qualified_table}"), e.table
        quarantined = count(
            conn,
            "select coalesce(sum(rows_quarantined), 0) from audit.loads"
            " where source = %s and entity = %s and superseded_by is null",
            e.source,
            e.name,
        )
        assert quarantined == count(
            conn,
            "select count(*) from audit.quarantine where source = %s and entity = %s",
            e.source,
            e.name,
        ), e.table
    bad = conn.execute(
        "select file_path from audit.loads"
        " where rows_in_file is not null and rows_in_file <> rows_loaded + rows_quarantined"
    ).fetchall()
    assert bad == []
    per_file = conn.execute(
        """
        select l.file_path, l.rows_loaded, l.load_id from audit.loads l
         where l.superseded_by is null and l.source = 'exchange' and l.entity = 'trades'
        """
    ).fetchall()
    for path, rows_loaded, load_id in per_file:
        assert rows_loaded == count(
            conn,
            "select count(*) from raw.exchange_trades where _file = %s and _load_id = %s",
            path,
            load_id,
        )


def snapshot(conn: psycopg.Connection) -> dict[str, list]:
    """Every row of raw and audit (but the partitions' stat signatures, a cache)."""
    tables = [e.qualified_table for e in ENTITIES]
    tables += ["audit.loads", "audit.quarantine", "audit.pending_partitions"]
    out = {t: sorted(map(repr, conn.execute(f"select * from {t}").fetchall())) for t in tables}
    partitions = conn.execute(
        "select source, entity, partition_date, fingerprint, load_id, files, files_rejected,"
        " rows_loaded, rows_quarantined, loaded_at, first_loaded_at, loads from audit.partitions"
    ).fetchall()
    out["audit.partitions"] = sorted(map(repr, partitions))
    return out


# ---- round trip


def test_every_entity_round_trips_with_exact_values(
    tmp_path: Path, warehouse_url: str, db: psycopg.Connection
) -> None:
    full_landing(tmp_path)
    report = ingest(tmp_path, url=warehouse_url)

    assert report.ok and report.warnings == []
    assert len(report.loaded) == 15 and {p.action for p in report.partitions} == {"loaded"}
    assert report.rows_quarantined == 0
    for e in ENTITIES:
        got = count(db, f"select count(*) from {e.qualified_table}")
        assert got == EXPECTED_ROWS[(e.source, e.name)], e.table
    assert_reconciled(db)

    t1 = db.execute(
        "select executed_at, price, quantity, quote_amount, maker_fee, _dt, _file, _line"
        " from raw.exchange_trades where trade_id = 'T1'"
    ).fetchone()
    assert t1 == (
        datetime(2026, 1, 2, 13, 45, 12, 123456, tzinfo=UTC),
        Decimal("27431.5"),
        Decimal("0.00012"),
        Decimal("3.291780"),
        Decimal("-0.000329178"),
        D1,
        "exchange/trades/dt=2026-01-02/part-0.csv",
        2,
    )
    t3 = db.execute(
        "select executed_at, price::text, _line from raw.exchange_trades where trade_id = 'T3'"
    ).fetchone()
    assert t3 == (
        datetime(2026, 1, 2, 5, 0, 0, 500000, tzinfo=UTC),
        "12345678901234567890.123456789012",
        4,
    )
    pe = db.execute(
        "select event_id, event_at, note, _line from raw.exchange_product_events order by 1"
    ).fetchall()
    assert pe == [
        ("PE1", datetime(2026, 1, 2, 0, 0, tzinfo=UTC), None, 2),
        ("PE2", datetime(2026, 1, 2, 1, 30, tzinfo=UTC), 'v2\nwith "notes"', 3),
    ]
    assert db.execute(
        "select display_name from raw.exchange_products where product_id = 'ETH-PERP'"
    ).fetchone() == ("ETH perpetual, USDT-margined",)
    assert db.execute(
        "select usd_price, price_date from raw.exchange_asset_prices where asset = 'USD'"
    ).fetchone() == (Decimal("1"), D1)

    users = db.execute(
        "select user_id, registered_at, kyc_level, email, phone, referrer_user_id, _line"
        " from raw.crm_users order by user_id"
    ).fetchall()
    assert users == [
        ("u_1", datetime(2026, 1, 2, 4, 0, tzinfo=UTC), 2, "a@example.com", "+65 1234", None, 1),
        ("u_2", datetime(2026, 1, 2, 0, 0, tzinfo=UTC), 0, "", None, "u_1", 2),
    ]
    campaigns = db.execute(
        "select campaign_id, budget_usd, excluded_countries, product_line"
        " from raw.crm_campaigns order by 1"
    ).fetchall()
    assert campaigns == [
        ("C1", Decimal("50000.25"), ["US", "CN"], None),
        ("C2", Decimal("1000"), [], "spot"),
    ]
    assert db.execute("select amount_usd from raw.crm_rewards").fetchone() == (Decimal("0.1"),)
    assert db.execute("select body, csat from raw.feedback_tickets").fetchone() == (
        "Why\tso high?\nReally",
        None,
    )
    # the same key twice within a delivery: both rows kept
    assert count(db, "select count(*) from raw.crm_campaign_enrollments") == 2
    loads = db.execute(
        "select distinct l.load_id from audit.loads l join raw.crm_users u"
        " on u._load_id = l.load_id and u._file = l.file_path"
    ).fetchall()
    assert len(loads) == 1
    assert count(db, "select count(*) from audit.partitions") == 15
    assert count(db, "select count(*) from audit.loads where status = 'loaded'") == 15


def test_rerun_with_nothing_new_changes_nothing(
    tmp_path: Path, warehouse_url: str, db: psycopg.Connection
) -> None:
    full_landing(tmp_path)
    ingest(tmp_path, url=warehouse_url)
    before = snapshot(db)
    report = ingest(tmp_path, url=warehouse_url)
    assert {p.action for p in report.partitions} == {"unchanged"}
    assert report.rows_loaded == 0
    assert snapshot(db) == before
    # touching _SUCCESS (same files, same content) is not a re-delivery either
    done(tmp_path / "exchange" / "trades" / f"dt={D1}")
    assert {p.action for p in ingest(tmp_path, url=warehouse_url).partitions} == {"unchanged"}
    assert snapshot(db) == before


def test_untouched_partitions_are_not_checksummed_again(
    tmp_path: Path, warehouse_url: str, db: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exops.ingest.files import LandingRoot

    full_landing(tmp_path)
    ingest(tmp_path, url=warehouse_url)
    hashed: list[str] = []
    checksum = LandingRoot.sha256
    monkeypatch.setattr(
        LandingRoot, "sha256", lambda root, rel: hashed.append(rel.name) or checksum(root, rel)
    )
    report = ingest(tmp_path, url=warehouse_url)
    assert {p.action for p in report.partitions} == {"unchanged"} and hashed == []

    # new content of the same size, modification time set back, _SUCCESS left alone: the
    # file's change time still gives it away, and the checksum tells a re-delivery
    part = tmp_path / "exchange" / "trades" / f"dt={D1}"
    data = part / "part-0.csv"
    before = data.stat()
    data.write_text(data.read_text().replace(",sell,u_2,", ",buy,u_22,", 1))
    os.utime(data, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert data.stat().st_size == before.st_size
    report = ingest(tmp_path, url=warehouse_url)
    by_entity = {p.entity: p.action for p in report.partitions if p.action != "unchanged"}
    assert by_entity == {"trades": "replaced"}
    assert hashed == ["part-0.csv"]
    assert count(db, "select count(*) from raw.exchange_trades where taker_side = 'sell'") == 0

    # --rehash checksums every file, and still finds nothing new
    hashed.clear()
    report = ingest(tmp_path, url=warehouse_url, rehash=True)
    assert {p.action for p in report.partitions} == {"unchanged"}
    assert len(hashed) == len(CSV) + len(JSONL)


# ---- re-delivery


def test_redelivery_with_changed_content_replaces_atomically(
    tmp_path: Path, warehouse_url: str, db: psycopg.Connection
) -> None:
    header = CSV["trades"].split("\n", 1)[0]
    part = put(
        tmp_path,
        "exchange",
        "trades",
        D1,
        "part-0.csv",
        CSV["trades"] + "T9,BTC-USDT,2026-01-02T00:00:00Z,1,1,1,BUY,u,u,0,0\n",
    )
    done(part)
    done(put(tmp_path, "exchange", "trades", D2, "part-0.csv", CSV["trades"]))
    first = ingest(tmp_path, url=warehouse_url)
    assert count(db, "select count(*) from audit.quarantine") == 1
    first_load = {p.dt: p.load_id for p in first.partitions}

    (part / "part-0.csv").write_text(
        header + "\nT1,BTC-USDT,2026-01-02T00:00:00Z,2,2,4,sell,u_1,u_2,0,0\n"
    )
    done(part)
    report = ingest(tmp_path, url=warehouse_url)
    by_dt = {p.dt: p for p in report.partitions}
    assert by_dt[D1].action == "replaced" and by_dt[D2].action == "unchanged"
    assert by_dt[D1].rows_loaded == 1
    rows = db.execute(
        "select trade_id, price, _dt, _load_id from raw.exchange_trades where _dt = %s", (D1,)
    ).fetchall()
    assert rows == [("T1", Decimal("2"), D1, by_dt[D1].load_id)]
    assert count(db, "select count(*) from raw.exchange_trades where _dt = %s", D2) == 3
    # history kept, marked superseded; the old quarantine rows are gone
    history = db.execute(
        "select load_id, superseded_by, rows_loaded, rows_quarantined from audit.loads"
        " where partition_date = %s order by load_id",
        (D1,),
    ).fetchall()
    assert history == [
        (first_load[D1], by_dt[D1].load_id, 3, 1),
        (by_dt[D1].load_id, None, 1, 0),
    ]
    assert count(db, "select count(*) from audit.quarantine") == 0
    assert db.execute(
        "select loads, load_id from audit.partitions where partition_date = %s", (D1,)
    ).fetchone() == (2, by_dt[D1].load_id)
    assert_reconciled(db)


def test_redelivery_under_new_file_names_replaces(
    tmp_path: Path, warehouse_url: str, db: psycopg.Connection
) -> None:
    part = put(tmp_path, "crm", "users", D1, "part-0.jsonl", jsonl(JSONL[("crm", "users")]))
    done(part)
    ingest(tmp_path, url=warehouse_url)
    (part / "part-0.jsonl").rename(part / "users-v2.jsonl.tmp.jsonl")
    done(part)
    report = ingest(tmp_path, url=warehouse_url)
    assert [p.action for p in report.partitions] == ["replaced"]
    files = db.execute("select distinct _file from raw.crm_users").fetchall()
    assert files == [(f"crm/users/dt={D1}/users-v2.jsonl.tmp.jsonl",)]
    assert count(db, "select count(*) from raw.crm_users") == 2
    assert_reconciled(db)


# ---- incomplete partitions


def test_partition_without_success_waits_then_loads(
    tmp_path: Path, warehouse_url: str, db: psycopg.Connection
) -> None:
    part = put(tmp_path, "exchange", "transfers", D1, "part-0.csv", CSV["transfers"])
    report = ingest(tmp_path, url=warehouse_url)
    assert [(p.action, p.dt) for p in report.partitions] == [("incomplete", D1)]
    assert [p.name for p in report.incomplete] == [f"exchange/transfers dt={D1}"]
    assert count(db, "select count(*) from raw.exchange_transfers") == 0
    pending = db.execute(
        "select source, entity, partition_date from audit.pending_partitions"
    ).fetchall()
    assert pending == [("exchange", "transfers", D1)]
    before = snapshot(db)
    ingest(tmp_path, url=warehouse_url)
    assert snapshot(db) == before  # still pending: nothing changes, first_seen_at kept

    done(part)
    report = ingest(tmp_path, url=warehouse_url)
    assert [p.action for p in report.partitions] == ["loaded"]
    assert count(db, "select count(*) from raw.exchange_transfers") == 2
    assert count(db, "select count(*) from audit.pending_partitions") == 0


# ---- bad deliveries


def test_bad_files_are_rejected_and_recorded_while_the_rest_loads(
    tmp_path: Path, warehouse_url: str, db: psycopg.Connection
) -> None:
    trades = CSV["trades"]
    header = trades.split("\n", 1)[0]
    good_row = "T5,BTC-USDT,2026-01-02T00:00:00Z,1,1,1,buy,u,u,0,0\n"
    part = put(tmp_path, "exchange", "trades", D1, "a-good.csv.gz", trades)
    put(
        tmp_path, "exchange", "trades", D1, "b-missing-col.csv", trades.replace(",taker_fee", "", 1)
    )
    put(tmp_path, "exchange", "trades", D1, "c-latin1.csv", (header + "\n").encode() + b"\xe9\n")
    put(tmp_path, "exchange", "trades", D1, "d-broken.csv.gz", b"")
    (part / "d-broken.csv.gz").write_bytes(gzip.compress(trades.encode())[:40])
    put(tmp_path, "exchange", "trades", D1, "e-empty.csv", "")
    put(tmp_path, "exchange", "trades", D1, "f-header-only.csv", header + "\r\n")
    put(tmp_path, "exchange", "trades", D1, "g-upload.tmp", trades)
    put(tmp_path, "exchange", "trades", D1, "h.parquet", b"PAR1")
    put(tmp_path, "exchange", "trades", D1, "i-dupes.csv", header + "\n" + good_row * 2)
    put(
        tmp_path,
        "exchange",
        "trades",
        D1,
        "j-unterminated.csv",
        header + "\n" + good_row + '"T6,BTC-USDT\n' + good_row,
    )
    done(part)
    done(put(tmp_path, "crm", "kyc_events", D1, "k.jsonl", "a,b\nc,d\n"))
    done(put(tmp_path, "crm", "rewards", D1, "r.jsonl", jsonl(JSONL[("crm", "rewards")])))

    report = ingest(tmp_path, url=warehouse_url)
    assert report.ok
    assert count(db, "select count(*) from raw.exchange_trades") == 3 + 2
    assert count(db, "select count(*) from raw.crm_rewards") == 1
    got = {
        path.rsplit("/", 1)[1]: rest
        for path, *rest in db.execute(
            "select file_path, status, rows_in_file, rows_loaded, rows_quarantined, error"
            " from audit.loads"
        ).fetchall()
    }
    unexpected = "unexpected file type {}: exchange files are .csv or .csv.gz"
    assert got == {
        "a-good.csv.gz": ["loaded", 3, 3, 0, None],
        "b-missing-col.csv": [
            "rejected",
            3,
            0,
            3,
            "missing required column 'taker_fee' in the header (line 1)",
        ],
        "c-latin1.csv": [
            "rejected",
            None,
            0,
            0,
            "not valid UTF-8: line 2, byte 1 of the line (0xe9): invalid continuation byte",
        ],
        "d-broken.csv.gz": [
            "rejected",
            None,
            0,
            0,
            "corrupt or truncated gzip file: Compressed file ended before the"
            " end-of-stream marker was reached",
        ],
        "e-empty.csv": ["empty", 0, 0, 0, None],
        "f-header-only.csv": ["empty", 0, 0, 0, None],
        "g-upload.tmp": ["rejected", None, 0, 0, unexpected.format(".tmp")],
        "h.parquet": ["rejected", None, 0, 0, unexpected.format(".parquet")],
        "i-dupes.csv": ["loaded", 2, 2, 0, None],
        "j-unterminated.csv": [
            "rejected",
            2,
            0,
            2,
            "not valid CSV: the quoted field starting on line 3 is never closed",
        ],
        "k.jsonl": [
            "rejected",
            2,
            0,
            2,
            "not JSON Lines: no line is valid JSON"
            " (first error: line 1: invalid JSON: Expecting value at column 1)",
        ],
        "r.jsonl": ["loaded", 1, 1, 0, None],
    }
    quarantine = db.execute(
        "select file_path, line, column_name, reason from audit.quarantine"
        " where file_path like '%%b-missing-col.csv' order by line"
    ).fetchall()
    assert [(q[1], q[2]) for q in quarantine] == [(2, None), (3, None), (4, None)]
    assert quarantine[0][3] == (
        "file rejected: missing required column 'taker_fee' in the header (line 1)"
    )
    trades_result = next(p for p in report.partitions if p.entity == "trades")
    assert len(trades_result.rejected_files) == 6
    assert any(
        "rejected exchange/trades/dt=2026-01-02/h.parquet" in line
        for line in report.summary_lines()
    )
    assert_reconciled(db)


def test_a_file_rejected_late_leaves_no_rows_behind(
    tmp_path: Path, warehouse_url: str, db: psycopg.Connection
) -> None:
    header = CSV["trades"].split("\n", 1)[0]
    rows = "".join(f"T{i},BTC-USDT,2026-01-02T00:00:00Z,1,1,1,buy,u,u,0,0\n" for i in range(20_000))
    part = put(
        tmp_path,
        "exchange",
        "trades",
        D1,
        "big.csv",
        (header + "\n" + rows).encode() + b"T-last,\xff\n",
    )
    put(tmp_path, "exchange", "trades", D1, "small.csv", CSV["trades"])
    done(part)
    report = ingest(tmp_path, url=warehouse_url)
    (result,) = report.partitions
    assert [f.path.rsplit("/", 1)[1] for f in result.rejected_files] == ["big.csv"]
    assert result.rejected_files[0].error == (
        "not valid UTF-8: line 20002, byte 8 of the line (0xff): invalid start byte"
    )
    assert count(db, "select count(*) from raw.exchange_trades") == 3
    assert_reconciled(db)


def test_quarantined_rows_are_recorded_with_file_line_column_and_text(
    tmp_path: Path, warehouse_url: str, db: psycopg.Connection
) -> None:
    records = JSONL[("feedback", "survey_responses")]
    lines = [
        json.dumps(records[0]),
        "",
        json.dumps({**records[1], "score": 9}),
        '{"response_id": "S3", "survey": "nps", "score": "7", "submitted_at": "x"}',
        "{broken",
    ]
    done(put(tmp_path, "feedback", "survey_responses", D1, "s.jsonl", "\n".join(lines) + "\n"))
    ingest(tmp_path, url=warehouse_url)
    got = db.execute(
        "select file_path, line, column_name, reason, raw_text from audit.quarantine order by line"
    ).fetchall()
    path = f"feedback/survey_responses/dt={D1}/s.jsonl"
    assert got == [
        (path, 3, "score", "score: 9 is not between 1 and 5 for survey 'csat'", lines[2]),
        (
            path,
            4,
            "score",
            "score: '7' is not a JSON integer; submitted_at: 'x' is not a timestamp"
            " YYYY-MM-DDTHH:MM:SS[.fraction] followed by Z or +-HH:MM",
            lines[3],
        ),
        (
            path,
            5,
            None,
            "invalid JSON: Expecting property name enclosed in double quotes at column 2",
            "{broken",
        ),
    ]
    assert count(db, "select count(*) from raw.feedback_survey_responses") == 1
    assert_reconciled(db)


def test_layout_problems_are_warnings(
    tmp_path: Path, warehouse_url: str, db: psycopg.Connection
) -> None:
    done(put(tmp_path, "exchange", "trades", D1, "a.csv", CSV["trades"]))
    for folder in (
        "exchange/trades/2026-01-02",
        "exchange/trades/dt=2026-02-30",
        "exchange/orders/dt=2026-01-02",
        "marketing/ads/dt=2026-01-02",
    ):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "_SUCCESS").touch()
    report = ingest(tmp_path, url=warehouse_url)
    assert report.warnings == [
        "ignored exchange/orders: not an entity of source exchange",
        "ignored exchange/trades/2026-01-02: not a partition folder named dt=YYYY-MM-DD"
        " with a valid date",
        "ignored exchange/trades/dt=2026-02-30: not a partition folder named dt=YYYY-MM-DD"
        " with a valid date",
        "ignored marketing: not a source folder",
    ]
    assert [p.action for p in report.partitions] == ["loaded"]
    assert count(db, "select count(*) from raw.exchange_trades") == 3


def test_filters_limit_what_is_loaded(
    tmp_path: Path, warehouse_url: str, db: psycopg.Connection
) -> None:
    full_landing(tmp_path, D1)
    full_landing(tmp_path, D2)
    report = ingest(tmp_path, url=warehouse_url, sources=["crm"], dt_from=D2)
    assert {(p.source, p.dt) for p in report.partitions} == {("crm", D2)}
    assert len(report.loaded) == 6
    report = ingest(tmp_path, url=warehouse_url, entities=["exchange/trades", "tickets"], dt_to=D1)
    assert {(p.entity, p.dt) for p in report.partitions} == {("trades", D1), ("tickets", D1)}
    with pytest.raises(ValueError, match="unknown entity"):
        ingest(tmp_path, url=warehouse_url, entities=["orders"])


# ---- failures and concurrency


def test_a_database_failure_is_reported_and_other_partitions_still_load(
    tmp_path: Path, warehouse_url: str, db: psycopg.Connection
) -> None:
    full_landing(tmp_path)
    db.execute("alter table raw.crm_rewards add column broken integer not null")
    try:
        report = ingest(tmp_path, url=warehouse_url)
    finally:
        db.execute("alter table raw.crm_rewards drop column broken")
    (failed,) = report.failed
    assert failed.name == f"crm/rewards dt={D1}"
    assert failed.error is not None and "broken" in failed.error
    assert len(report.loaded) == 14
    assert not report.ok
    with pytest.raises(IngestError, match="1 partition"):
        report.raise_for_failures()
    assert count(db, "select count(*) from audit.loads where entity = 'rewards'") == 0
    assert [p.action for p in ingest(tmp_path, url=warehouse_url).loaded] == ["loaded"]
    assert_reconciled(db)


def test_concurrent_runs_never_double_load(
    tmp_path: Path, warehouse_url: str, db: psycopg.Connection
) -> None:
    full_landing(tmp_path)
    reports = []
    threads = [
        threading.Thread(target=lambda: reports.append(ingest(tmp_path, url=warehouse_url)))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(reports) == 3 and all(r.ok for r in reports)
    assert sum(len(r.loaded) for r in reports) == 15
    for e in ENTITIES:
        got = count(db, f"select count(*) from {e.qualified_table}")
        assert got == EXPECTED_ROWS[(e.source, e.name)], e.table
    assert count(db, "select count(*) from audit.loads") == 15
    assert_reconciled(db)
