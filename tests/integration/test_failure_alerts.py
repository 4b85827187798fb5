"""Failures are told: a failed stage emails data engineers once per DAG run and stage (real
`airflow dags test`, real dbt, real SMTP), `exops run --via direct` tells the same way, and a
day not published by its deadline is told once."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from test_publish_support import AS_OF, build_sample, mail_environment, read_mail, text_of

from exops import transform
from exops.airflow_local import dags_test_chain
from exops.ingest import ingest
from exops.notify import check_publish_deadline, tell_stage_failure
from exops.publish.store import ensure_publish_tables
from exops.simulate import simulate

# Airflow failure callbacks and mail: nothing here differs by PostgreSQL version
pytestmark = pytest.mark.server_agnostic

START = date(2026, 6, 1)
DAYS = 4
LAST = START + timedelta(days=DAYS - 1)
# the embedded server trusts local connections: a password in the URL is accepted and ignored,
# so every run below carries a secret that must never reach an email
SECRET = "Wh-s3cret-Pa55"
RECIPIENTS = {"ops": "ops@platform.test", "data_eng": "de@platform.test"}
EXOPS = str(Path(sys.executable).with_name("exops"))


def _with_password(url: str) -> str:
    parts = urlsplit(url)
    user = parts.username or "postgres"
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}:{SECRET}@{host}"))


@pytest.fixture(scope="module")
def broken(warehouse_url: str, tmp_path_factory):
    """A warehouse loaded from a landing zone whose last day misses every price but USD's:
    its dbt build fails (the test_faults failed-build setup)."""
    landing = tmp_path_factory.mktemp("landing")
    simulate(landing, 150, DAYS, START, 5)
    prices = landing / "exchange" / "asset_prices" / f"dt={LAST}" / "part-00000.csv"
    lines = prices.read_text().splitlines(keepends=True)
    prices.write_text(lines[0] + "".join(ln for ln in lines[1:] if ln.startswith("USD,")))
    assert not ingest(landing, url=warehouse_url).failed
    var = tmp_path_factory.mktemp("var")
    with mail_environment(var, RECIPIENTS) as mail:
        mp = pytest.MonkeyPatch()
        mp.setenv("EXOPS_WAREHOUSE_URL", _with_password(warehouse_url))
        mp.setenv("EXOPS_LANDING_DIR", str(landing))
        mp.setenv("EXOPS_TASK_RETRIES", "0")
        # the landing zone's own clock: its last day is not overdue (tested on its own below)
        mp.setenv("EXOPS_TODAY", str(LAST + timedelta(days=1)))
        transform.parse()  # exops_transform with its model tasks, as after `make install`
        try:
            yield {"url": warehouse_url, "landing": landing, "var": var, "mail": mail}
        finally:
            mp.undo()


def db_rows(var: Path, query: str) -> list:
    db = sqlite3.connect(var / "airflow" / "airflow.db")
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def _failure_mails(mail: Path) -> list:
    return [m for m in read_mail(mail) if m["Subject"].startswith("[exops failure]")]


def _assert_no_secret(message) -> None:
    text = str(message) + text_of(message)
    assert SECRET not in text
    assert not re.search(r"postgres(ql)?://[^\s/@:]*:[^\s@*]+@", text)


def test_a_failed_dag_task_emails_data_engineers_once_per_run_and_stage(broken) -> None:
    env = dict(os.environ)
    status, tail = dags_test_chain(["exops_transform"], LAST, env=env)
    assert status != 0, "\n".join(tail)
    (told,) = _failure_mails(broken["mail"])
    assert told["To"] == "de@platform.test"
    assert told["Subject"].startswith("[exops failure] transform failed (exops_transform, run ")
    body = text_of(told)
    assert "Stage: transform" in body and "Task: dbt_build" in body
    assert "int_trades_priced" in body  # the error: the model whose price is missing
    log_line = next(ln for ln in body.splitlines() if ln.startswith("Log: "))
    assert "dag_id=exops_transform" in log_line and "task_id=dbt_build" in log_line
    _assert_no_secret(told)

    # the same DAG run failing again (`dags test` reruns the date's run): nobody is told twice
    status, tail = dags_test_chain(["exops_transform"], LAST, env=env)
    assert status != 0, "\n".join(tail)
    assert len(_failure_mails(broken["mail"])) == 1
    db = sqlite3.connect(Path(broken["var"]) / "airflow" / "airflow.db")
    try:
        runs = db.execute(
            "select run_id, state from dag_run where dag_id = 'exops_transform'"
        ).fetchall()
    finally:
        db.close()
    assert [state for _, state in runs] == ["failed"]
    # the model tasks say where it broke: the model whose prices are missing failed, with
    # dbt's message in its log; what reads it was skipped; what it reads was built
    states = dict(
        db_rows(
            broken["var"],
            "select task_id, state from task_instance where dag_id = 'exops_transform'",
        )
    )
    assert states["dbt_build"] == "failed"
    assert states["dbt.int_trades_priced"] == "failed"
    assert states["dbt.int_user_trades"] == states["dbt.exchange_daily_kpis"] == "skipped"
    assert states["dbt.stg_exchange__trades"] == states["dbt.int_days"] == "success"
    with psycopg.connect(broken["url"]) as conn:
        rows = conn.execute(
            "select notification_key, emailed_at is not null from publish.notifications"
            " where kind = 'stage_failure'"
        ).fetchall()
    assert rows == [(f"stage|exops_transform|{LAST}T00:00:00+00:00|transform", True)]


def test_the_cli_run_tells_a_failed_stage_too(broken) -> None:
    before = len(_failure_mails(broken["mail"]))
    env = dict(os.environ)
    run = [EXOPS, "run", "--landing", str(broken["landing"]), "--via", "direct", "--date"]
    first = subprocess.run([*run, str(LAST)], env=env, capture_output=True, text=True)
    assert first.returncode == 1, first.stdout[-2000:] + first.stderr[-2000:]
    assert "transform failed" in first.stderr
    told = _failure_mails(broken["mail"])[before:]
    assert len(told) == 1
    assert told[0]["Subject"] == (
        f"[exops failure] transform failed (exops run, run direct__{LAST})"
    )
    body = text_of(told[0])
    assert "Stage: transform" in body and "int_trades_priced" in body
    log_path = Path(next(ln for ln in body.splitlines() if ln.startswith("Log: "))[5:])
    assert log_path.parent == broken["var"] / "logs" and log_path.is_file()
    assert "int_trades_priced" in log_path.read_text()
    _assert_no_secret(told[0])

    again = subprocess.run([*run, str(LAST)], env=env, capture_output=True, text=True)
    assert again.returncode == 1
    assert len(_failure_mails(broken["mail"])) == before + 1  # same day and stage: once


def test_a_told_error_never_carries_a_secret(broken) -> None:
    error = RuntimeError(
        f"could not connect to postgresql://loader:{SECRET}@db.internal:5432/exops\n"
        f"dsn: host=db.internal password={SECRET}"
    )
    assert tell_stage_failure("ingest", error, "var/logs/x.log", "exops_ingest", "manual__x")
    assert not tell_stage_failure("ingest", error, "var/logs/x.log", "exops_ingest", "manual__x")
    (told,) = [m for m in _failure_mails(broken["mail"]) if "ingest failed" in m["Subject"]]
    body = text_of(told)
    assert "postgresql://loader:***@db.internal:5432/exops" in body
    assert "password=***" in body
    _assert_no_secret(told)


def test_a_failure_is_told_once_even_when_the_warehouse_is_down(broken, monkeypatch) -> None:
    from airflow_cluster import free_port

    before = len(_failure_mails(broken["mail"]))
    # nothing listens there: the claim is a file under var/notifications/ instead
    down = f"postgresql://exops:{SECRET}@127.0.0.1:{free_port()}/exops?connect_timeout=2"
    monkeypatch.setenv("EXOPS_WAREHOUSE_URL", down)
    error = ConnectionError(f"cannot connect to the warehouse {down}")
    assert tell_stage_failure("ingest", error, "log", "exops_ingest", "scheduled__down")
    assert not tell_stage_failure("ingest", error, "log", "exops_ingest", "scheduled__down")
    told = _failure_mails(broken["mail"])[before:]
    assert len(told) == 1
    assert "the warehouse could not be reached" in text_of(told[0])
    _assert_no_secret(told[0])
    assert len(list((broken["var"] / "notifications").glob("*.claimed"))) == 1


@pytest.fixture
def sample_db(server_url: str, tmp_path):
    name = f"exops_deadline_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    url = urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    build_sample(url)
    with mail_environment(tmp_path / "var", RECIPIENTS) as mail:
        yield url, mail
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')


def test_a_day_not_published_by_its_deadline_is_told_once(sample_db, monkeypatch) -> None:
    url, mail = sample_db
    end_of_day = datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=UTC) + timedelta(days=1)
    monkeypatch.delenv("EXOPS_PUBLISH_DEADLINE_HOURS", raising=False)
    with psycopg.connect(url, autocommit=True) as conn:
        # within the default 30 hours: nothing
        assert check_publish_deadline(conn, now=end_of_day + timedelta(hours=29)) is None
        assert read_mail(mail) == []
        # overdue: told once, however often it is checked
        late = end_of_day + timedelta(hours=31)
        assert check_publish_deadline(conn, now=late) == AS_OF
        assert check_publish_deadline(conn, now=late + timedelta(hours=5)) == AS_OF
        (told,) = read_mail(mail)
        assert told["To"] == "de@platform.test"
        assert told["Subject"] == f"[exops failure] the report of {AS_OF} is overdue"
        assert "Latest report published: none yet" in text_of(told)
        # a configurable deadline: 48 hours, and the day published in time, tell nothing
        monkeypatch.setenv("EXOPS_PUBLISH_DEADLINE_HOURS", "48")
        conn.execute("delete from publish.notifications")
        assert check_publish_deadline(conn, now=late) is None
        ensure_publish_tables(conn)  # what publishing's first run does
        conn.execute(
            "insert into publish.reports_sent (as_of, path, message_id, recipients, emailed_at)"
            " values (%s, 'r', '<r@exops>', 'ops', now())",
            (AS_OF,),
        )
        assert check_publish_deadline(conn, now=late + timedelta(days=9)) is None
    assert len(read_mail(mail)) == 1
