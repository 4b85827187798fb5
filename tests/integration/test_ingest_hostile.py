"""Hostile landing zones: entries that are not regular files, names that are not UTF-8,
partitions dated in the future, files of bad rows, and ingest tasks of different sources
running at once. Each case asserts the exact outcome and that nothing else was lost."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest

from exops.contract import ENTITIES
from exops.ingest import ensure_raw_tables, ingest

# not run again on PostgreSQL 15 (make test-pg15): the landing zone's files and names, read by
# Python before any COPY (the loader's SQL runs on PostgreSQL 15 in test_ingest and
# test_ingest_contract_review)
pytestmark = pytest.mark.server_agnostic

D1 = date(2026, 1, 2)
TODAY = date(2026, 1, 10)
TRADES_HEADER = (
    "trade_id,product_id,executed_at,price,quantity,quote_amount,taker_side,"
    "maker_user_id,taker_user_id,maker_fee,taker_fee\n"
)
SYMLINK = "not a regular file: a symbolic link, never followed"


def trade(tid: str) -> str:
    return f"{tid},BTC-USDT,2026-01-02T10:00:00Z,1,1,1,buy,u_1,u_2,0,0\n"


def user(i: int, **kw) -> dict:
    return {
        "user_id": f"u_{i}",
        "registered_at": "2026-01-02T00:00:00Z",
        "country": "SG",
        "acquisition_channel": "organic",
        "referrer_user_id": None,
        "kyc_level": 1,
        "email": f"person{i}@example.com",
        "phone": "+65 8123 4567",
        "device_id": f"dev-{i}",
        "signup_ip": "203.0.113.7",
        "updated_at": "2026-01-02T00:00:00Z",
        **kw,
    }


def partition(landing: Path, source: str, ent: str, dt: date = D1) -> Path:
    part = landing / source / ent / f"dt={dt.isoformat()}"
    part.mkdir(parents=True, exist_ok=True)
    return part


def done(part: Path) -> Path:
    (part / "_SUCCESS").write_bytes(b"")
    return part


@pytest.fixture
def db(warehouse_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        ensure_raw_tables(conn)
        tables = [e.qualified_table for e in ENTITIES]
        tables += ["audit.loads", "audit.quarantine", "audit.partitions"]
        conn.execute(f"truncate {', '.join(tables)}, audit.pending_partitions, audit.unloads")
        yield conn


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    root = tmp_path / "landing"
    root.mkdir()
    return root


def loads(conn: psycopg.Connection) -> dict[str, tuple]:
    rows = conn.execute(
        "select file_path, status, rows_in_file, rows_loaded, rows_quarantined, error"
        " from audit.loads where superseded_by is null"
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


def audit_text(conn: psycopg.Connection) -> str:
    """Every row of every audit table, as text."""
    out = []
    for table in ("loads", "quarantine", "partitions", "pending_partitions", "unloads"):
        out += [repr(r) for r in conn.execute(f"select * from audit.{table}").fetchall()]
    return "\n".join(out)


def assert_every_file_accounted(conn: psycopg.Connection) -> None:
    bad = conn.execute(
        "select file_path from audit.loads"
        " where rows_in_file is not null and rows_in_file <> rows_loaded + rows_quarantined"
    ).fetchall()
    assert bad == []
    for e in ENTITIES:
        loaded = conn.execute(
            "select coalesce(sum(rows_loaded), 0) from audit.loads"
            " where source = %s and entity = %s and superseded_by is null",
            (e.source, e.name),
        ).fetchone()[0]
        in_raw = conn.execute(f"select count(*) from {e.qualified_table}").fetchone()[0]
        assert loaded == in_raw, e.table


def run_with_timeout(seconds: float, **kwargs):
    """ingest(**kwargs) in a thread; fails the test (instead of hanging it) past ``seconds``."""
    box: dict = {}

    def target() -> None:
        try:
            box["report"] = ingest(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"ingest did not finish within {seconds}s"
    if "error" in box:
        raise box["error"]
    return box["report"]


# ---- only regular files inside the landing root


def test_symlink_to_proc_environ_is_rejected_and_nothing_of_it_is_recorded(
    landing: Path, warehouse_url: str, db: psycopg.Connection, monkeypatch
) -> None:
    secret = "exops-test-secret-" + hashlib.sha256(os.urandom(8)).hexdigest()[:12]
    monkeypatch.setenv("EXOPS_TEST_SECRET", secret)
    part = partition(landing, "crm", "users")
    (part / "env.jsonl").symlink_to("/proc/self/environ")
    (part / "good.jsonl").write_text(json.dumps(user(1)) + "\n")
    done(part)
    report = run_with_timeout(60, landing=landing, url=warehouse_url, today=TODAY)
    assert report.ok
    rel = f"crm/users/dt={D1}"
    assert loads(db) == {
        f"{rel}/env.jsonl": ("rejected", None, 0, 0, SYMLINK),
        f"{rel}/good.jsonl": ("loaded", 1, 1, 0, None),
    }
    assert db.execute(
        "select sha256 from audit.loads where file_path like '%%env.jsonl'"
    ).fetchone() == ("not read",)
    text = audit_text(db)
    assert secret not in text and "EXOPS_TEST_SECRET" not in text and "PATH=" not in text
    assert db.execute("select count(*) from raw.crm_users").fetchone()[0] == 1
    assert_every_file_accounted(db)


def test_symlinks_to_a_file_or_a_partition_outside_the_root_load_no_row(
    landing: Path, tmp_path: Path, warehouse_url: str, db: psycopg.Connection
) -> None:
    outside = tmp_path / "outside"
    outside_part = outside / "dt=2026-01-03"
    outside_part.mkdir(parents=True)
    (outside / "stolen.csv").write_text(TRADES_HEADER + trade("X1") + trade("X2"))
    (outside_part / "a.csv").write_text(TRADES_HEADER + trade("X3"))
    (outside_part / "_SUCCESS").write_bytes(b"")

    part = partition(landing, "exchange", "trades")
    (part / "a.csv").write_text(TRADES_HEADER + trade("T1"))
    (part / "b.csv").symlink_to(outside / "stolen.csv")
    done(part)
    (landing / "exchange" / "trades" / "dt=2026-01-03").symlink_to(outside_part)
    # a symlinked entity folder is not walked into either
    (landing / "exchange" / "products").symlink_to(outside)

    report = run_with_timeout(60, landing=landing, url=warehouse_url, today=TODAY)
    assert report.ok
    assert db.execute("select trade_id from raw.exchange_trades").fetchall() == [("T1",)]
    assert loads(db) == {
        "exchange/trades/dt=2026-01-02/a.csv": ("loaded", 1, 1, 0, None),
        "exchange/trades/dt=2026-01-02/b.csv": ("rejected", None, 0, 0, SYMLINK),
        "exchange/trades/dt=2026-01-03": ("rejected", None, 0, 0, SYMLINK),
    }
    assert "ignored exchange/products: a symbolic link where a folder belongs, never followed" in (
        report.warnings
    )
    assert "X1" not in audit_text(db)
    assert_every_file_accounted(db)

    # the link replaced by a regular file: a re-delivery, loaded
    (part / "b.csv").unlink()
    (part / "b.csv").write_text(TRADES_HEADER + trade("T2"))
    done(part)
    report = ingest(landing, url=warehouse_url, today=TODAY)
    assert [p.action for p in report.loaded] == ["replaced"]
    assert sorted(db.execute("select trade_id from raw.exchange_trades").fetchall()) == [
        ("T1",),
        ("T2",),
    ]
    superseded = db.execute(
        "select file_path, superseded_reason from audit.loads where superseded_by is not null"
        " and partition_date = %s order by 1",
        (D1,),
    ).fetchall()
    assert superseded == [
        ("exchange/trades/dt=2026-01-02/a.csv", "redelivery"),
        ("exchange/trades/dt=2026-01-02/b.csv", "redelivery"),
    ]


def test_a_fifo_does_not_hang_the_run_and_is_rejected(
    landing: Path, warehouse_url: str, db: psycopg.Connection
) -> None:
    part = partition(landing, "exchange", "trades")
    (part / "a.csv").write_text(TRADES_HEADER + trade("T1"))
    os.mkfifo(part / "d.csv")
    done(part)
    report = run_with_timeout(60, landing=landing, url=warehouse_url, today=TODAY)
    assert report.ok
    assert loads(db) == {
        "exchange/trades/dt=2026-01-02/a.csv": ("loaded", 1, 1, 0, None),
        "exchange/trades/dt=2026-01-02/d.csv": (
            "rejected",
            None,
            0,
            0,
            "not a regular file: a FIFO (named pipe), never opened",
        ),
    }
    # a rerun finds the same delivery: nothing is opened, nothing changes
    again = run_with_timeout(60, landing=landing, url=warehouse_url, today=TODAY)
    assert [p.action for p in again.partitions] == ["unchanged"]
    assert_every_file_accounted(db)


def test_a_fifo_swapped_in_after_discovery_is_never_read(
    landing: Path, warehouse_url: str, db: psycopg.Connection, monkeypatch
) -> None:
    from exops.ingest import pipeline

    part = partition(landing, "exchange", "trades")
    (part / "a.csv").write_text(TRADES_HEADER + trade("T1"))
    (part / "d.csv").write_text(TRADES_HEADER + trade("T2"))
    done(part)
    discover = pipeline.discover

    def swap(*args, **kwargs):
        scan = discover(*args, **kwargs)
        (part / "d.csv").unlink()
        os.mkfifo(part / "d.csv")
        return scan

    monkeypatch.setattr(pipeline, "discover", swap)
    report = run_with_timeout(60, landing=landing, url=warehouse_url, today=TODAY)
    assert report.ok
    assert loads(db)["exchange/trades/dt=2026-01-02/d.csv"] == (
        "rejected",
        None,
        0,
        0,
        "not a regular file: a FIFO (named pipe), never opened",
    )
    assert db.execute("select trade_id from raw.exchange_trades").fetchall() == [("T1",)]


def test_a_file_name_that_is_not_utf8_is_rejected_alone(
    landing: Path, warehouse_url: str, db: psycopg.Connection
) -> None:
    part = partition(landing, "exchange", "trades")
    (part / "a.csv").write_text(TRADES_HEADER + trade("T1"))
    bad_name = os.path.join(os.fsencode(part), b"b\xff.csv")
    with open(bad_name, "wb") as f:
        f.write((TRADES_HEADER + trade("T2")).encode())
    done(part)
    report = run_with_timeout(60, landing=landing, url=warehouse_url, today=TODAY)
    assert report.ok
    assert loads(db) == {
        "exchange/trades/dt=2026-01-02/a.csv": ("loaded", 1, 1, 0, None),
        "exchange/trades/dt=2026-01-02/b\\xff.csv": (
            "rejected",
            None,
            0,
            0,
            "file name is not valid UTF-8: 'b\\\\xff.csv'; never opened",
        ),
    }
    assert db.execute("select trade_id from raw.exchange_trades").fetchall() == [("T1",)]
    assert any("b\\xff.csv" in line for line in report.summary_lines())
    assert [p.action for p in ingest(landing, url=warehouse_url, today=TODAY).partitions] == [
        "unchanged"
    ]


def test_each_file_is_read_once_and_its_checksum_is_of_the_bytes_parsed(
    landing: Path, warehouse_url: str, db: psycopg.Connection, monkeypatch
) -> None:
    from exops.ingest.files import LandingFile

    part = partition(landing, "exchange", "trades")
    data = {"a.csv": TRADES_HEADER + trade("T1"), "b.csv": TRADES_HEADER + trade("T2") * 3}
    for name, text in data.items():
        (part / name).write_text(text)
    done(part)
    reads: list[int] = []
    readinto = LandingFile.readinto
    monkeypatch.setattr(
        LandingFile, "readinto", lambda f, b: reads.append(n := readinto(f, b)) or n
    )
    ingest(landing, url=warehouse_url, today=TODAY)
    assert sum(reads) == sum(len(t) for t in data.values())
    got = dict(db.execute("select file_path, sha256 from audit.loads").fetchall())
    assert got == {
        f"exchange/trades/dt={D1}/{name}": hashlib.sha256(text.encode()).hexdigest()
        for name, text in data.items()
    }


# ---- the run's date: future partitions


def test_a_future_partition_is_held_then_loaded_when_its_day_comes(
    landing: Path, warehouse_url: str, db: psycopg.Connection, monkeypatch
) -> None:
    today = date(2026, 1, 2)
    for dt, tid in (
        (today, "T1"),
        (today + timedelta(days=1), "T2"),
        (today + timedelta(days=5), "T3"),
    ):
        part = partition(landing, "exchange", "trades", dt)
        (part / "a.csv").write_text(TRADES_HEADER + trade(tid))
        done(part)
    incomplete = partition(landing, "exchange", "trades", today + timedelta(days=30))
    (incomplete / "a.csv").write_text(TRADES_HEADER)

    report = ingest(landing, url=warehouse_url, today=today)
    assert {(p.dt, p.action) for p in report.partitions} == {
        (today, "loaded"),
        (today + timedelta(days=1), "loaded"),
        (today + timedelta(days=5), "future"),
        (today + timedelta(days=30), "future"),
    }
    assert "1 incomplete" not in report.summary_lines()[-1]
    assert "2 future" in report.summary_lines()[-1]
    assert sorted(db.execute("select trade_id from raw.exchange_trades").fetchall()) == [
        ("T1",),
        ("T2",),
    ]
    assert db.execute("select max(partition_date) from audit.partitions").fetchone()[0] == (
        today + timedelta(days=1)
    )
    pending = db.execute(
        "select partition_date, status from audit.pending_partitions order by 1"
    ).fetchall()
    assert pending == [
        (today + timedelta(days=5), "future"),
        (today + timedelta(days=30), "future"),
    ]

    # EXOPS_TODAY when no date is passed; EXOPS_MAX_FUTURE_DAYS widens the lead
    monkeypatch.setenv("EXOPS_TODAY", (today + timedelta(days=3)).isoformat())
    monkeypatch.setenv("EXOPS_MAX_FUTURE_DAYS", "2")
    report = ingest(landing, url=warehouse_url)
    assert report.today == today + timedelta(days=3)
    assert [(p.dt, p.action) for p in report.loaded] == [(today + timedelta(days=5), "loaded")]
    assert db.execute("select count(*) from raw.exchange_trades").fetchone()[0] == 3
    pending = db.execute(
        "select partition_date, status from audit.pending_partitions order by 1"
    ).fetchall()
    assert pending == [(today + timedelta(days=30), "future")]

    # the day of the incomplete one comes: it is then late, no longer future
    monkeypatch.setenv("EXOPS_TODAY", (today + timedelta(days=30)).isoformat())
    ingest(landing, url=warehouse_url)
    pending = db.execute("select partition_date, status from audit.pending_partitions").fetchall()
    assert pending == [(today + timedelta(days=30), "incomplete")]
    assert_every_file_accounted(db)


def test_a_bad_run_date_is_a_clear_error(landing: Path, warehouse_url: str, monkeypatch) -> None:
    from exops.ingest.clock import ClockError

    monkeypatch.setenv("EXOPS_TODAY", "02/01/2026")
    with pytest.raises(
        ClockError, match="EXOPS_TODAY: must be a date in YYYY-MM-DD form, got '02/01/2026'"
    ):
        ingest(landing, url=warehouse_url)


# ---- ingest tasks of different sources do not wait on each other


def test_ingest_of_one_source_does_not_wait_for_a_load_of_another(
    landing: Path, warehouse_url: str, db: psycopg.Connection
) -> None:
    done(partition(landing, "crm", "users")).joinpath("a.jsonl").write_text(
        json.dumps(user(1)) + "\n"
    )
    with psycopg.connect(warehouse_url) as other:
        # an exchange load in progress: its transaction holds ROW EXCLUSIVE on the table,
        # which `create index if not exists` on that table would wait for
        other.execute(
            "insert into raw.exchange_trades (trade_id, _load_id, _dt, _file, _line)"
            " values ('T0', 0, '2026-01-01', 'x', 1)"
        )
        report = run_with_timeout(
            30, landing=landing, url=warehouse_url, sources=["crm"], today=TODAY
        )
        other.rollback()
    assert [p.action for p in report.loaded] == ["loaded"]


# ---- bounded bad input


def test_a_file_of_bad_rows_is_capped_masked_and_flagged(
    landing: Path, warehouse_url: str, db: psycopg.Connection
) -> None:
    part = partition(landing, "crm", "users")
    lines = [json.dumps(user(0))]
    for i in range(1, 2001):
        lines.append(json.dumps(user(i, kyc_level=7, note="x" * (10_000 if i == 1 else 10))))
    (part / "users.jsonl").write_text("\n".join(lines) + "\n")
    (part / "ok.jsonl").write_text(json.dumps(user(9999)) + "\n")
    done(part)
    report = ingest(landing, url=warehouse_url, today=TODAY)
    rel = f"crm/users/dt={D1}/users.jsonl"
    assert loads(db)[rel] == ("loaded", 2001, 1, 2000, None)
    flags = dict(db.execute("select file_path, mostly_bad from audit.loads").fetchall())
    assert flags == {rel: True, f"crm/users/dt={D1}/ok.jsonl": False}
    assert [f.path for f in report.mostly_bad_files] == [rel]
    assert f"mostly bad: {rel}: 2,000 of 2,001 rows quarantined" in report.summary_lines()

    rows = db.execute(
        "select line, column_name, reason, raw_text, raw_sha256 from audit.quarantine order by line"
    ).fetchall()
    assert len(rows) == 2000
    assert [r[0] for r in rows] == list(range(2, 2002))
    assert all(r[3] is not None for r in rows[:1000])
    assert all(r[3] is None for r in rows[1000:])
    assert all(r[4] == hashlib.sha256(lines[r[0] - 1].encode()).hexdigest() for r in rows)
    assert all(r[1] == "kyc_level" and r[2].startswith("kyc_level: 7 ") for r in rows)
    first, second = rows[0][3], rows[1][3]
    assert len(first.encode()) < 4200 and first.endswith("bytes, cut to 4,096]")
    assert "@example.com" not in first and "@example.com" not in second
    assert "dev-2" not in second and "203.0.113.7" not in second and "8123" not in second
    assert '"email": "<masked>"' in second and '"user_id": "u_2"' in second
    assert_every_file_accounted(db)


def test_personal_values_are_masked_in_reasons(
    landing: Path, warehouse_url: str, db: psycopg.Connection
) -> None:
    part = partition(landing, "feedback", "survey_responses")
    row = {
        "response_id": "S1",
        "user_id": "u_1",
        "survey": "nps",
        "score": 7,
        "product_line": None,
        "comment": ["call me on +65 8123 4567", "me@example.com"],
        "submitted_at": "2026-01-02T09:00:00Z",
    }
    (part / "s.jsonl").write_text(json.dumps(row) + "\n")
    done(part)
    ingest(landing, url=warehouse_url, today=TODAY)
    ((column, reason, raw),) = db.execute(
        "select column_name, reason, raw_text from audit.quarantine"
    ).fetchall()
    assert column == "comment"
    assert "8123" not in reason and "example.com" not in reason and "<masked>" in reason
    assert "8123" not in raw and "example.com" not in raw


def test_quarantined_rows_past_their_retention_are_purged(
    landing: Path, warehouse_url: str, db: psycopg.Connection, monkeypatch
) -> None:
    part = partition(landing, "exchange", "trades")
    (part / "a.csv").write_text(
        TRADES_HEADER + trade("T1") + "T2,BTC-USDT,never,1,1,1,buy,u,u,0,0\n"
    )
    done(part)
    ingest(landing, url=warehouse_url, today=TODAY)
    assert db.execute("select count(*) from audit.quarantine").fetchone()[0] == 1
    db.execute("update audit.quarantine set quarantined_at = now() - interval '31 days'")
    monkeypatch.setenv("EXOPS_QUARANTINE_RETENTION_DAYS", "30")
    report = ingest(landing, url=warehouse_url, today=TODAY)
    assert report.quarantine_purged == 1
    assert db.execute("select count(*) from audit.quarantine").fetchone()[0] == 0
    # the file's counts stay in the load audit
    assert loads(db)[f"exchange/trades/dt={D1}/a.csv"] == ("loaded", 2, 1, 1, None)


# ---- unload


def test_unload_removes_a_partition_and_records_it_like_a_redelivery(
    landing: Path, warehouse_url: str, db: psycopg.Connection
) -> None:
    import subprocess
    import sys

    exops = str(Path(sys.executable).parent / "exops")
    late = D1 + timedelta(days=1)
    for dt, rows in ((D1, trade("T1")), (late, trade("T2") + "T3,BTC-USDT,x,1,1,1,buy,u,u,0,0\n")):
        part = partition(landing, "exchange", "trades", dt)
        (part / "a.csv").write_text(TRADES_HEADER + rows)
        done(part)
    ingest(landing, url=warehouse_url, today=TODAY)
    (load_id,) = db.execute(
        "select load_id from audit.partitions where partition_date = %s", (late,)
    ).fetchone()

    args = ["unload", "--source", "exchange", "--entity", "trades", "--dt", late.isoformat()]
    proc = subprocess.run(
        [exops, *args, "--note", "dated by mistake"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"unloaded exchange/trades dt={late} (load {load_id}): 1 raw")
    assert db.execute("select trade_id from raw.exchange_trades").fetchall() == [("T1",)]
    assert db.execute("select count(*) from audit.quarantine").fetchone()[0] == 0
    assert db.execute("select max(partition_date) from audit.partitions").fetchone()[0] == D1
    ((unload_id, unloaded_load, removed, q_removed, note),) = db.execute(
        "select unload_id, load_id, rows_removed, rows_quarantined_removed, note from audit.unloads"
    ).fetchall()
    assert (unloaded_load, removed, q_removed, note) == (load_id, 1, 1, "dated by mistake")
    assert unload_id > load_id
    history = db.execute(
        "select load_id, superseded_by, superseded_reason, rows_loaded from audit.loads"
        " where partition_date = %s",
        (late,),
    ).fetchall()
    assert history == [(load_id, unload_id, "unload", 1)]

    # nothing loaded any more: a second unload says so
    proc = subprocess.run([exops, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert f"exchange/trades dt={late} is not loaded: nothing to unload" in proc.stderr

    # its files are still there: the next ingest loads it again, as a new load
    report = ingest(landing, url=warehouse_url, today=TODAY)
    assert [(p.dt, p.action) for p in report.loaded] == [(late, "loaded")]
    assert db.execute("select count(*) from raw.exchange_trades").fetchone()[0] == 2
    assert (
        db.execute(
            "select count(*) from audit.loads where partition_date = %s", (late,)
        ).fetchone()[0]
        == 2
    )
    assert_every_file_accounted(db)


def test_a_simulated_landing_zone_records_its_clock(tmp_path: Path) -> None:
    from exops.contract import LANDING_CLOCK, read_landing_clock
    from exops.ingest.discovery import discover
    from exops.simulate import simulate

    out = tmp_path / "sim"
    simulate(out, 200, 3, date(2030, 5, 1), 7)
    assert (out / LANDING_CLOCK).read_text() == "2030-05-04\n"
    assert read_landing_clock(out) == date(2030, 5, 4)
    assert discover(out, list(ENTITIES)).warnings == []
    # a link cannot stand in for the clock
    (out / LANDING_CLOCK).unlink()
    (out / LANDING_CLOCK).symlink_to(tmp_path / "elsewhere")
    assert read_landing_clock(out) is None
