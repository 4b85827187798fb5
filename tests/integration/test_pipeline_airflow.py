"""The whole chain through real `airflow dags test` runs, as `make run` drives it."""

from __future__ import annotations

import email
import os
import sqlite3
import subprocess
import sys
from datetime import date
from email import policy
from pathlib import Path

import psycopg
import pytest

from exops.simulate import simulate

# Airflow runs the stages whose SQL the other modules test on each server
pytestmark = pytest.mark.server_agnostic

DAY0 = date(2026, 3, 2)
DAYS = 20


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("landing")
    simulate(out, 300, DAYS, DAY0, seed=7)
    return out


@pytest.fixture(scope="module")
def env(warehouse_url: str, tmp_path_factory) -> dict[str, str]:
    var = tmp_path_factory.mktemp("var")
    env = dict(os.environ)
    env.update(
        EXOPS_WAREHOUSE_URL=warehouse_url,
        EXOPS_VAR_DIR=str(var),
        EXOPS_TASK_RETRIES="1",
        EXOPS_RETRY_DELAY_SECONDS="1",
    )
    for key in [k for k in env if k.startswith(("EXOPS_SMTP_", "EXOPS_MAIL_TO_"))]:
        del env[key]
    return env


def exops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    cli = Path(sys.executable).with_name("exops")
    return subprocess.run([str(cli), *args], env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def first_run(landing: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return exops(env, "run", "--landing", str(landing), "--via", "airflow")


def test_run_succeeds_through_every_dag(first_run, env) -> None:
    assert first_run.returncode == 0, first_run.stderr[-4000:] + first_run.stdout[-4000:]
    for dag_id in ("exops_ingest", "exops_transform", "exops_publish"):
        assert f"  {dag_id}: success" in first_run.stdout
    # Airflow itself recorded each DAG run and its tasks as successful
    db = sqlite3.connect(Path(env["EXOPS_VAR_DIR"]) / "airflow" / "airflow.db")
    try:
        runs = dict(db.execute("select dag_id, state from dag_run").fetchall())
        tasks = db.execute(
            "select dag_id, task_id, state from task_instance order by dag_id, task_id"
        ).fetchall()
    finally:
        db.close()
    assert runs == {d: "success" for d in ("exops_ingest", "exops_transform", "exops_publish")}
    assert {(d, t) for d, t, _ in tasks} >= {
        ("exops_ingest", "ingest_exchange"),
        ("exops_transform", "dbt_build"),
        ("exops_publish", "validate"),
        ("exops_publish", "publish"),
        ("exops_transform", "dbt.stg_exchange__trades"),
        ("exops_transform", "dbt.exchange_daily_kpis"),
    }
    # a task per dbt model, each reporting its model and data tests as built
    assert sum(t.startswith("dbt.") for d, t, _ in tasks if d == "exops_transform") >= 50
    assert {state for _, _, state in tasks} == {"success"}


def test_everything_in_the_landing_zone_is_accounted_for(first_run, landing, warehouse_url):
    files = [p for p in landing.rglob("*") if p.is_file() and p.suffix in (".csv", ".jsonl")]
    expected_rows = 0
    for p in files:
        lines = [ln for ln in p.read_text().splitlines() if ln.strip()]
        expected_rows += len(lines) - (1 if p.suffix == ".csv" else 0)
    with psycopg.connect(warehouse_url) as conn:
        loaded, quarantined, n_files = conn.execute(
            "select sum(rows_loaded), sum(rows_quarantined), count(*)"
            " from audit.loads where superseded_by is null"
        ).fetchone()
        raw_total = 0
        for (table,) in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'raw'"
        ).fetchall():
            raw_total += conn.execute(f"select count(*) from raw.{table}").fetchone()[0]
    assert n_files == len(files)
    assert quarantined == 0  # the simulator writes only conforming rows
    assert loaded == raw_total == expected_rows
    last_day = f"{date.fromordinal(DAY0.toordinal() + DAYS - 1)}"
    assert f"as-of {last_day}" in first_run.stdout


def test_the_report_and_emails_are_where_the_run_says(first_run, env) -> None:
    out = first_run.stdout
    report_line = next(ln for ln in out.splitlines() if ln.startswith("report: "))
    report = Path(report_line.removeprefix("report: "))
    assert report.is_file() and report.is_relative_to(env["EXOPS_VAR_DIR"])
    assert "<html" in report.read_text().lower()
    mails = sorted((Path(env["EXOPS_VAR_DIR"]) / "mail").glob("*.eml"))
    assert f"emails sent by this run: {len(mails)}" in out
    subjects = []
    for path in mails:
        with path.open("rb") as f:
            subjects.append(email.message_from_binary_file(f, policy=policy.default)["Subject"])
    assert any("Daily ops report" in s for s in subjects)


def test_a_second_run_loads_nothing_and_sends_nothing(first_run, landing, env, warehouse_url):
    with psycopg.connect(warehouse_url) as conn:
        before = conn.execute("select count(*), max(load_id) from audit.loads").fetchone()
    mails_before = len(list((Path(env["EXOPS_VAR_DIR"]) / "mail").glob("*.eml")))
    again = exops(env, "run", "--landing", str(landing), "--via", "airflow")
    assert again.returncode == 0, again.stderr[-4000:]
    with psycopg.connect(warehouse_url) as conn:
        after = conn.execute("select count(*), max(load_id) from audit.loads").fetchone()
    assert after == before
    assert len(list((Path(env["EXOPS_VAR_DIR"]) / "mail").glob("*.eml"))) == mails_before
    assert "emails sent by this run: 0" in again.stdout
    # nothing new to build: dbt did not run, and the model tasks say so (skipped, not run)
    db = sqlite3.connect(Path(env["EXOPS_VAR_DIR"]) / "airflow" / "airflow.db")
    try:
        states = dict(
            db.execute(
                "select task_id, state from task_instance where dag_id = 'exops_transform'"
                " and run_id = (select run_id from dag_run where dag_id = 'exops_transform'"
                " order by id desc limit 1)"
            ).fetchall()
        )
    finally:
        db.close()
    assert states.pop("dbt_build") == "success"
    assert states.pop("dbt_done") == "success"
    assert len(states) >= 50
    assert set(states.values()) == {"skipped"}, states
