"""The daily chain on a distributed Airflow: scheduler, dag-processor, api-server and two
Celery workers as separate processes, PostgreSQL metadata DB, Redis broker. The scheduler runs
the day as in production: the test triggers only `exops_ingest` for its day (through the REST
API, a JWT from /auth/token); `exops_transform` starts from the raw Assets the ingest tasks
update and `exops_publish` from the marts Asset, and the test waits for the report. Tasks
spread over both workers. Nothing is skipped: Redis or PostgreSQL are started when not already
running."""

from __future__ import annotations

import email
import os
from datetime import date, timedelta
from email import policy
from pathlib import Path

import psutil
import psycopg
import pytest

from exops.assets import RAW_ASSET_URIS
from exops.publish.mailsink import start_sink
from exops.simulate import simulate

from airflow_cluster import Cluster

pytestmark = pytest.mark.distributed

START = date(2026, 5, 4)
DAYS = 10
DAY = START + timedelta(days=DAYS - 1)
CHAIN = ("exops_ingest", "exops_transform", "exops_publish")
DOWNSTREAM = CHAIN[1:]


@pytest.fixture(scope="module")
def chain(warehouse_url: str, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("distributed")
    landing = root / "landing"
    simulate(landing, 200, DAYS, START, 11)
    mail = root / "mail"
    host, port, stop_sink = start_sink(directory=mail)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXOPS_", "AIRFLOW"))}
    env.update(
        EXOPS_WAREHOUSE_URL=warehouse_url,
        EXOPS_LANDING_DIR=str(landing),
        EXOPS_VAR_DIR=str(root / "var"),
        EXOPS_SMTP_PORT=str(port),  # no EXOPS_SMTP_HOST: the local sink on 127.0.0.1
        EXOPS_TASK_RETRIES="0",
    )
    cluster = Cluster(root / "cluster", env)
    runs: dict[str, dict] = {}
    try:
        with cluster:
            cluster.wait_for_dags(list(CHAIN))
            # the test's one trigger: the day's ingest; the scheduler starts the rest
            run_id = cluster.trigger("exops_ingest", f"{DAY.isoformat()}T00:00:00Z")
            for dag_id in CHAIN:
                if dag_id != "exops_ingest":
                    run_id = cluster.wait_for_first_run(dag_id)["dag_run_id"]
                state = cluster.wait_for_run(dag_id, run_id)
                runs[dag_id] = {
                    "run_id": run_id,
                    "state": state,
                    "tis": cluster.task_instances(dag_id, run_id),
                    "consumed": cluster.upstream_asset_events(dag_id, run_id),
                }
                if state != "success":
                    break
            if "exops_publish" in runs:
                runs["exops_publish"]["validate_log"] = cluster.task_log(
                    "exops_publish", runs["exops_publish"]["run_id"], "validate"
                )
            # every run of the chain's DAGs, read after the last one finished: a second run
            # of a downstream DAG (one per raw Asset, say) would be queued or running by now
            all_runs = {d: cluster.dag_runs(d) for d in CHAIN}
            started = {n: p.pid for n, p in cluster.processes.items()}
            logs = {n: cluster.log_path(n) for n in cluster.processes}
            listening = _listening_addresses(started.values())
    finally:
        stop_sink()
    yield {
        "runs": runs,
        "all_runs": all_runs,
        "pids": started,
        "logs": logs,
        "listening": listening,
        "mail": mail,
        "reports": root / "var" / "reports",
        "url": warehouse_url,
        "landing": landing,
    }


def _listening_addresses(pids) -> set[str]:
    found = set()
    for pid in pids:
        try:
            procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for proc in procs:
            try:
                for c in proc.net_connections(kind="inet"):
                    if c.status == "LISTEN":
                        found.add(c.laddr.ip)
            except psutil.NoSuchProcess:
                pass
    return found


def _ti_lines(chain: dict) -> str:
    return "\n".join(
        f"{d}.{ti['task_id']}: {ti['state']} on {ti['hostname']}"
        for d, run in chain["runs"].items()
        for ti in run["tis"]
    )


def test_every_run_of_the_chain_succeeds(chain: dict) -> None:
    states = {d: r["state"] for d, r in chain["runs"].items()}
    logs = {n: p.read_text()[-3000:] for n, p in chain["logs"].items() if "worker" in n}
    assert states == dict.fromkeys(CHAIN, "success"), (states, _ti_lines(chain), logs)
    for run in chain["runs"].values():
        assert run["tis"] and all(ti["state"] == "success" for ti in run["tis"])
    print("\n" + _ti_lines(chain))


def test_only_the_ingest_was_triggered(chain: dict) -> None:
    """The scheduler started the downstream runs from Asset events: none was triggered."""
    kinds = {
        d: [(r["run_type"], r["triggered_by"]) for r in runs]
        for d, runs in chain["all_runs"].items()
    }
    assert kinds == {
        "exops_ingest": [("manual", "rest_api")],
        "exops_transform": [("asset_triggered", "asset")],
        "exops_publish": [("asset_triggered", "asset")],
    }, kinds
    for dag_id in DOWNSTREAM:
        (run,) = chain["all_runs"][dag_id]
        assert run["dag_run_id"] == chain["runs"][dag_id]["run_id"]
        assert run["logical_date"] is None and not run["conf"]  # no day of its own


def test_the_transform_ran_once_for_the_three_raw_assets(chain: dict) -> None:
    """One transform run consumed one event of each raw Asset, each carrying the day."""
    ingest_run = chain["runs"]["exops_ingest"]["run_id"]
    consumed = chain["runs"]["exops_transform"]["consumed"]
    assert sorted(e["uri"] for e in consumed) == sorted(RAW_ASSET_URIS.values())
    for event in consumed:
        assert event["source_dag_id"] == "exops_ingest"
        assert event["source_run_id"] == ingest_run
        assert event["extra"]["day"] == DAY.isoformat()
    # the transform run passed the day on to the marts event the publish run started from
    (marts,) = chain["runs"]["exops_publish"]["consumed"]
    assert marts["source_dag_id"] == "exops_transform"
    assert marts["source_run_id"] == chain["runs"]["exops_transform"]["run_id"]
    assert marts["extra"] == {"days": [DAY.isoformat()]}


def test_the_publish_run_reports_the_delivered_day(chain: dict) -> None:
    """exops_publish took its day from the Asset events, not from a default."""
    log = chain["runs"]["exops_publish"]["validate_log"]
    assert f"as-of {DAY.isoformat()}: the day(s) of the ingest run(s) behind the marts" in log, log


def test_tasks_ran_on_both_workers(chain: dict) -> None:
    hosts = {ti["hostname"] for run in chain["runs"].values() for ti in run["tis"]}
    assert hosts == {"worker1", "worker2"}, _ti_lines(chain)
    # each worker's own log shows it received tasks from the Celery queue
    for name in ("worker1", "worker2"):
        text = chain["logs"][name].read_text()
        assert "execute_workload" in text or "Task " in text, text[-2000:]


def test_the_day_is_loaded_built_and_published(chain: dict) -> None:
    with psycopg.connect(chain["url"]) as conn:
        days = conn.execute(
            "select count(distinct partition_date), max(partition_date) from audit.partitions"
        ).fetchone()
        kpi = conn.execute(
            "select trade_count from marts.exchange_daily_kpis where activity_date = %s", (DAY,)
        ).fetchone()
        report = conn.execute(
            "select emailed_at is not null from publish.reports_sent where as_of = %s", (DAY,)
        ).fetchone()
    assert days == (DAYS, DAY)
    assert kpi is not None and kpi[0] > 0
    assert report == (True,)
    html = (chain["reports"] / DAY.isoformat() / "report.html").read_text()
    assert DAY.isoformat() in html
    mails = [
        email.message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in chain["mail"].glob("*.eml")
    ]
    subjects = [m["Subject"] for m in mails]
    assert f"[exops] Daily ops report {DAY}" in subjects, subjects


def test_servers_listen_on_loopback_only(chain: dict) -> None:
    assert chain["listening"], "the api-server listens"
    assert chain["listening"] <= {"127.0.0.1"}, chain["listening"]


def test_everything_started_is_stopped(chain: dict) -> None:
    alive = [pid for pid in chain["pids"].values() if psutil.pid_exists(pid)]
    zombies_or_gone = [pid for pid in alive if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE]
    assert alive == zombies_or_gone
    stray = [
        p.info["cmdline"]
        for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"]
        and any(str(Path(chain["logs"]["scheduler"]).parents[1]) in a for a in p.info["cmdline"])
    ]
    assert stray == []
