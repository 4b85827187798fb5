"""Faults the platform must survive, each on real services: the warehouse restarting (or its
connection dying) in the middle of a COPY, the SMTP server down at publish time, a corrupt
file among good ones, the same day run twice at once, and a dbt build that fails half-way."""

from __future__ import annotations

import email
import gzip
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from datetime import date, timedelta
from email import policy
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from test_publish_support import build_sample

from exops.ingest import ingest
from exops.publish import PublishError, PublishRefused, publish
from exops.publish.mailsink import start_sink
from exops.quality import validate
from exops.simulate import simulate

from airflow_cluster import free_port

START = date(2026, 6, 1)
DAYS = 6
LAST = START + timedelta(days=DAYS - 1)


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("landing")
    simulate(out, 200, DAYS, START, 5)
    return out


@pytest.fixture
def fresh_db(server_url: str):
    """A database of its own for one test (the module's is used by the chain tests)."""
    name = f"exops_fault_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def mail_env(tmp_path, monkeypatch) -> dict:
    monkeypatch.setenv("EXOPS_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("EXOPS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("EXOPS_SMTP_STARTTLS", "false")
    monkeypatch.setenv("EXOPS_MAIL_FROM", "exops@platform.test")
    for audience in ("OPS", "RISK", "DATA_ENG"):
        monkeypatch.setenv(f"EXOPS_MAIL_TO_{audience}", f"{audience.lower()}@platform.test")
    port = free_port()
    monkeypatch.setenv("EXOPS_SMTP_PORT", str(port))
    return {"port": port, "mail": tmp_path / "mail"}


def _rows_in(path: Path) -> int:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        lines = sum(1 for line in f if line.strip())
    return lines - (1 if ".csv" in path.name else 0)


def _expected_counts(landing: Path, source: str, dt_to: date | None = None) -> dict:
    out = {}
    for success in landing.glob(f"{source}/*/dt=*/_SUCCESS"):
        part = success.parent
        dt = date.fromisoformat(part.name[3:])
        if dt_to is None or dt <= dt_to:
            files = [p for p in part.iterdir() if p.name != "_SUCCESS"]
            out[(part.parent.name, dt)] = sum(_rows_in(p) for p in files)
    return out


def _raw_counts(conn: psycopg.Connection, source: str) -> dict:
    out = {}
    for (table,) in conn.execute(
        "select table_name from information_schema.tables"
        " where table_schema = 'raw' and table_name like %s",
        (f"{source}\\_%",),
    ).fetchall():
        for dt, n in conn.execute(f"select _dt, count(*) from raw.{table} group by 1").fetchall():
            out[(table.removeprefix(f"{source}_"), dt)] = n
    return out


def _mails(directory: Path) -> list:
    messages = []
    for path in sorted(directory.glob("*.eml")):
        with path.open("rb") as f:
            messages.append(email.message_from_binary_file(f, policy=policy.default))
    return messages


# ---- the warehouse dies in the middle of a partition load ---------------------------------


@pytest.fixture
def restartable_db(tmp_path: Path):
    """A PostgreSQL server of this test's own (embedded, socket only), so restarting it
    cannot disturb anything else; yields (url, restart)."""
    import pgserver
    from pgserver._commands import pg_ctl

    pgdata = tmp_path / "pg"
    pgdata.mkdir()
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    user = "pgserver" if os.geteuid() == 0 else None

    def restart() -> None:
        # immediate mode: the server goes down as in a crash and comes back up
        pg_ctl(["-w", "-m", "immediate", "restart"], pgdata=pgdata, user=user)

    try:
        yield server.get_uri("postgres"), restart
    finally:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)


@pytest.mark.parametrize("fault", ["backend_killed", "server_restarted"])
def test_warehouse_failing_mid_copy_leaves_the_partition_all_or_nothing(
    fault: str, request: pytest.FixtureRequest, landing: Path, tmp_path: Path
) -> None:
    if fault == "server_restarted":
        fresh_db, restart = request.getfixturevalue("restartable_db")
    else:
        fresh_db, restart = request.getfixturevalue("fresh_db"), None
    zone = tmp_path / "landing"
    shutil.copytree(landing / "exchange", zone / "exchange")
    big = zone / "exchange" / "trades" / f"dt={LAST}"
    lines = (big / "part-00000.csv").read_text().splitlines(keepends=True)
    with (big / "part-00001.csv").open("w") as f:
        f.write(lines[0])
        for _ in range(600):
            f.writelines(lines[1:])
    expected = _expected_counts(zone, "exchange")
    assert expected[("trades", LAST)] > 150_000

    # well inside the COPY of the big file: a quarter of its partition's rows copied, more
    # than any other trades partition holds (caught by COPY's progress, not by a sleep that
    # a fast machine outruns)
    inside = expected[("trades", LAST)] // 4
    assert all(n < inside for (e, d), n in expected.items() if e == "trades" and d != LAST)
    dbname = urlsplit(fresh_db).path.lstrip("/")
    killed: list[int] = []

    def kill_mid_copy() -> None:
        with psycopg.connect(fresh_db, autocommit=True) as watcher:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                row = watcher.execute(
                    "select pid from pg_stat_progress_copy where datname = %s"
                    " and relid = to_regclass('raw.exchange_trades') and tuples_processed > %s",
                    (dbname, inside),
                ).fetchone()
                if row:
                    killed.append(row[0])
                    if restart is None:
                        watcher.execute("select pg_terminate_backend(%s)", (row[0],))
                    else:
                        restart()
                    return
                time.sleep(0.01)

    killer = threading.Thread(target=kill_mid_copy)
    killer.start()
    try:
        report = ingest(zone, url=fresh_db, sources=["exchange"])
        first_failed = report.failed
    except psycopg.Error:
        first_failed = True
    killer.join()
    assert killed, "the COPY was caught and interrupted"
    assert first_failed

    with psycopg.connect(fresh_db) as conn:
        partitions = {
            (e, d): n
            for e, d, n in conn.execute(
                "select entity, partition_date, rows_loaded from audit.partitions"
            ).fetchall()
        }
        raw = _raw_counts(conn, "exchange")
        current = conn.execute(
            "select count(*) from audit.loads where entity = 'trades' and partition_date = %s",
            (LAST,),
        ).fetchone()[0]
    # the killed partition: nothing at all; every partition recorded: everything
    assert ("trades", LAST) not in partitions and raw.get(("trades", LAST), 0) == 0
    assert current == 0
    for key, n in partitions.items():
        assert raw.get(key, 0) == n == expected[key], key

    again = ingest(zone, url=fresh_db, sources=["exchange"])
    assert not again.failed
    with psycopg.connect(fresh_db) as conn:
        assert _raw_counts(conn, "exchange") == {k: v for k, v in expected.items() if v}
        files, loads = conn.execute(
            "select count(distinct (file_path)), count(*) from audit.loads"
            " where superseded_by is null"
        ).fetchone()
    assert files == loads  # no file recorded twice


# ---- the SMTP server is down at publish time --------------------------------------------


def test_smtp_down_then_back_sends_each_mail_exactly_once(fresh_db: str, mail_env: dict) -> None:
    build_sample(fresh_db)
    assert validate(fresh_db).passed
    with pytest.raises(PublishError, match="cannot send mail"):
        publish(fresh_db)
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute(
            "select count(*) from publish.kpi_alerts where claimed_at is not null"
        ).fetchone() == (0,)
        assert conn.execute("select count(*) from publish.reports_sent").fetchone() == (0,)
        assert conn.execute("select count(*) from publish.digests").fetchone() == (0,)

    host, port, stop = start_sink(port=mail_env["port"], directory=mail_env["mail"])
    try:
        result = publish(fresh_db)
        again = publish(fresh_db)  # the task's retry after success: nothing more
    finally:
        stop()
    assert result.report_emailed and not result.errors
    assert again.alerts_emailed == 0 and again.report_already_sent
    messages = _mails(mail_env["mail"])
    with psycopg.connect(fresh_db) as conn:
        alert_ids = {
            r[0]
            for r in conn.execute(
                "select message_id from publish.digests where emailed_at is not null"
            ).fetchall()
        }
        pending = conn.execute(
            "select count(*) from publish.kpi_alerts where emailed_at is null"
        ).fetchone()[0]
        report_id = conn.execute(
            "select message_id from publish.reports_sent where emailed_at is not null"
        ).fetchone()[0]
    assert alert_ids and pending == 0
    sent = [m["Message-ID"] for m in messages]
    assert sorted(sent) == sorted(alert_ids | {report_id})  # one mail each, no duplicate


# ---- a corrupt file among good ones ---------------------------------------------------------


def test_corrupt_file_is_rejected_and_recorded_while_the_good_ones_load(
    fresh_db: str, landing: Path, tmp_path: Path
) -> None:
    zone = tmp_path / "landing"
    shutil.copytree(landing / "exchange" / "trades", zone / "exchange" / "trades")
    part = zone / "exchange" / "trades" / f"dt={START}"
    good = part / "part-00000.csv"
    with gzip.open(part / "part-00001.csv.gz", "wb") as f:
        f.write(good.read_bytes())
    expected = _expected_counts(zone, "exchange")  # before the corrupt file arrives
    corrupt = part / "part-00002.csv.gz"
    corrupt.write_bytes((part / "part-00001.csv.gz").read_bytes()[:200])  # truncated gzip

    report = ingest(zone, url=fresh_db, sources=["exchange"], entities=["trades"])
    assert not report.failed
    with psycopg.connect(fresh_db) as conn:
        rows = conn.execute(
            "select file_path, status, rows_loaded, error from audit.loads"
            " where partition_date = %s order by file_path",
            (START,),
        ).fetchall()
        raw = _raw_counts(conn, "exchange")
    by_file = {Path(r[0]).name: r for r in rows}
    assert set(by_file) == {"part-00000.csv", "part-00001.csv.gz", "part-00002.csv.gz"}
    assert by_file["part-00002.csv.gz"][1:3] == ("rejected", 0)
    assert "gzip" in by_file["part-00002.csv.gz"][3].lower()
    n_good = _rows_in(good)
    assert by_file["part-00000.csv"][1:3] == ("loaded", n_good)
    assert by_file["part-00001.csv.gz"][1:3] == ("loaded", n_good)
    assert raw[("trades", START)] == 2 * n_good
    for key, n in expected.items():
        if key != ("trades", START):
            assert raw.get(key, 0) == n, key


# ---- the same day run twice at once, then a dbt build that fails half-way -----------------


EXOPS = str(Path(sys.executable).with_name("exops"))


def test_the_same_day_twice_at_once_runs_once_and_duplicates_nothing(
    warehouse_url: str, landing: Path, tmp_path: Path
) -> None:
    env = dict(os.environ, EXOPS_WAREHOUSE_URL=warehouse_url, EXOPS_VAR_DIR=str(tmp_path))
    day = LAST - timedelta(days=1)
    chain = f"{EXOPS} ingest --landing {landing} --to {day} && {EXOPS} transform"
    # output to files: a pipe nobody reads would block the run holding the lock
    logs = [(tmp_path / f"run{i}.out", tmp_path / f"run{i}.err") for i in range(2)]
    runs = [
        subprocess.Popen(["bash", "-c", chain], env=env, stdout=out.open("w"), stderr=err.open("w"))
        for out, err in logs
    ]
    codes = [run.wait(timeout=600) for run in runs]
    outputs = [(out.read_text(), err.read_text()) for out, err in logs]
    assert codes == [0, 0], [o[1][-3000:] for o in outputs]
    waited = [o for o in outputs if "waiting for it to finish" in o[1]]
    assert len(waited) == 1, "the second build waited for the first"

    expected = _expected_counts(landing, "exchange", day)
    with psycopg.connect(warehouse_url) as conn:
        assert _raw_counts(conn, "exchange") == {k: v for k, v in expected.items() if v}
        n, distinct, max_loads = conn.execute(
            "select count(*), count(distinct (source, entity, partition_date)), max(loads)"
            " from audit.partitions"
        ).fetchone()
        assert n == distinct and max_loads == 1  # every partition loaded exactly once
        days, distinct_days, trades = conn.execute(
            "select count(*), count(distinct activity_date), sum(trade_count)"
            " from marts.exchange_daily_kpis"
        ).fetchone()
        raw_trades = conn.execute(
            "select count(distinct trade_id) from raw.exchange_trades"
        ).fetchone()[0]
    assert days == distinct_days == DAYS - 1
    assert trades == raw_trades


def test_a_failed_build_publishes_nothing_and_the_next_run_recovers(
    warehouse_url: str, landing: Path, mail_env: dict
) -> None:
    from exops.transform import build

    prices = landing / "exchange" / "asset_prices" / f"dt={LAST}" / "part-00000.csv"
    original = prices.read_text()
    header = original.splitlines(keepends=True)[0]
    usd_only = [ln for ln in original.splitlines(keepends=True)[1:] if ln.startswith("USD,")]
    prices.write_text(header + "".join(usd_only))  # every other asset's price is missing
    host, port, stop = start_sink(port=mail_env["port"], directory=mail_env["mail"])
    try:
        assert not ingest(landing, url=warehouse_url).failed
        failed = build(warehouse_url)
        assert not failed.success
        assert "int_trades_priced" in "\n".join(failed.failures)
        with pytest.raises(PublishRefused, match=f"no validation run for as-of {LAST}"):
            publish(warehouse_url, as_of=LAST)
        with psycopg.connect(warehouse_url) as conn:
            assert conn.execute(
                "select count(*) from marts.exchange_daily_kpis where activity_date = %s",
                (LAST,),
            ).fetchone() == (0,)
            assert conn.execute(
                "select count(*) from publish.reports_sent where as_of = %s", (LAST,)
            ).fetchone() == (0,)
        assert _mails(mail_env["mail"]) == []

        prices.write_text(original)  # the fix: prices re-delivered
        assert not ingest(landing, url=warehouse_url).failed
        fixed = build(warehouse_url)
        assert fixed.success, fixed.summary()
        assert validate(warehouse_url, as_of=LAST).passed
        result = publish(warehouse_url, as_of=LAST)
    finally:
        stop()
        prices.write_text(original)
    assert result.report_emailed and not result.errors
    subjects = [m["Subject"] for m in _mails(mail_env["mail"])]
    assert sum("Daily ops report" in s for s in subjects) == 1
