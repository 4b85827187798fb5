"""The daily chain on a distributed Airflow: scheduler, dag-processor, api-server and two
Celery workers as separate processes, PostgreSQL metadata DB, Redis broker. The runs are
triggered through the REST API (a JWT from /auth/token) and their tasks spread over both
workers. Nothing is skipped: Redis or PostgreSQL are started when not already running."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import psutil
import psycopg
import pytest

from exops.publish.mailsink import start_sink
from exops.simulate import simulate

from airflow_cluster import Cluster

pytestmark = pytest.mark.distributed

START = date(2026, 5, 4)
DAYS = 10
DAY = START + timedelta(days=DAYS - 1)
CHAIN = ("exops_ingest", "exops_transform", "exops_publish")


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
            logical = f"{DAY.isoformat()}T00:00:00Z"
            for dag_id in CHAIN:
                conf = {"as_of": DAY.isoformat()} if dag_id == "exops_publish" else {}
                run_id = cluster.trigger(dag_id, logical, conf)
                state = cluster.wait_for_run(dag_id, run_id)
                runs[dag_id] = {
                    "run_id": run_id,
                    "state": state,
                    "tis": cluster.task_instances(dag_id, run_id),
                }
                if state != "success":
                    break
            started = {n: p.pid for n, p in cluster.processes.items()}
            logs = {n: cluster.log_path(n) for n in cluster.processes}
            listening = _listening_addresses(started.values())
    finally:
        stop_sink()
    yield {
        "runs": runs,
        "pids": started,
        "logs": logs,
        "listening": listening,
        "mail": mail,
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
    assert any(chain["mail"].glob("*.eml"))


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
