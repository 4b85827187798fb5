"""A distributed Airflow on this machine, as `make distributed-test` runs it (test tooling:
it lives under tests/, outside the exops package and the production image).

Separate processes, as in production: scheduler, dag-processor, api-server and Celery
workers, on a PostgreSQL metadata database and a Redis broker. Every service shares one
JWT secret and Fernet key (generated per cluster, never stored in the repository), every
server binds 127.0.0.1, and each worker reports its own hostname (``worker_hostname``) so a
task instance says which worker ran it.

The scheduler creates Asset-triggered runs as in production, but no time-scheduled ones: a
cluster policy (``airflow_local_settings.py`` in the cluster's own config folder) gives every
time-scheduled DAG Airflow's "no schedule" timetable, so the only runs of such a DAG are the
ones a test triggers, for the test's own day, never a cron run for the machine's date.

``Cluster`` starts what it needs and stops everything it started, process group by process
group; use it as a context manager.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

from exops.airflow_local import airflow_env
from exops.dag_defaults import STAGE_QUEUES

HOSTNAME_ENV = "EXOPS_WORKER_HOSTNAME"
# Airflow imports ``worker_hostname`` by its dotted name: the workers get this folder on
# their PYTHONPATH
SUPPORT_DIR = Path(__file__).resolve().parent
ADMIN = "admin"
LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = ("127.0.0.1", 6379)
# a Redis db number of its own, and a queue name per cluster on top
REDIS_DB = 11


class ClusterError(RuntimeError):
    pass


# the cluster's cluster policy: Airflow imports ``airflow_local_settings`` from
# $AIRFLOW_HOME/config in every process (dag-processor included), so only this cluster has it
LOCAL_SETTINGS = '''"""Cluster policy of a test cluster (tests/support/airflow_cluster.py)."""


def dag_policy(dag):
    """No time-scheduled runs here: a test triggers the runs of a time-scheduled DAG for its
    own day; Asset-scheduled DAGs keep their schedule (the scheduler starts their runs)."""
    from airflow.sdk.definitions.timetables.assets import AssetTriggeredTimetable
    from airflow.sdk.definitions.timetables.simple import NullTimetable

    if dag.timetable.can_be_scheduled and not isinstance(dag.timetable, AssetTriggeredTimetable):
        dag.timetable = NullTimetable()
'''


def worker_hostname() -> str:
    """Airflow's ``hostname_callable`` for the workers: the name given to this worker."""
    return os.environ.get(HOSTNAME_ENV) or socket.getfqdn()


def _reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _airflow() -> str:
    return str(Path(sys.executable).with_name("airflow"))


@dataclass
class Cluster:
    """Airflow with the CeleryExecutor in ``workdir``; ``env`` is the tasks' environment too."""

    workdir: Path
    task_env: dict[str, str]
    workers: int = 2
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    api_url: str = ""
    password: str = ""
    _token: str = ""
    _metadata: tuple[str, str] | None = None  # (admin url, database name) to drop
    _cleanups: list = field(default_factory=list)

    # ---- life cycle -------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_path(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def start(self, timeout: float = 180) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        broker = self._broker_url()
        metadata = self._metadata_url()
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        self.password = secrets.token_urlsafe(16)
        passwords = self.workdir / "passwords.json"
        passwords.write_text(json.dumps({ADMIN: self.password}))
        passwords.chmod(0o600)
        home = self.workdir / "airflow"
        (home / "config").mkdir(parents=True, exist_ok=True)
        (home / "config" / "airflow_local_settings.py").write_text(LOCAL_SETTINGS)
        queue = f"exops-{uuid.uuid4().hex[:8]}"
        self._cleanups.append(lambda: _forget_queue(broker, queue))
        env = dict(self.task_env)
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
                # psycopg 3 for the async engine too (Airflow would pick asyncpg)
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata.replace(
                    "+psycopg:", "+psycopg_async:", 1
                ),
                "AIRFLOW__CELERY__BROKER_URL": broker,
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{metadata}",
                "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
                # every stage's tasks on this cluster's queue (both workers take all stages)
                **{f"EXOPS_{stage.upper()}_QUEUE": queue for stage in STAGE_QUEUES},
                "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(port),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                # a task's calls to the api-server wait longer than the default 5 s: on a busy
                # machine a timeout there fails the task before it starts
                "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "airflow_cluster.worker_hostname",
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(SUPPORT_DIR), self.task_env.get("PYTHONPATH", "")) if p
                ),
                # the scheduler creates the Asset-triggered runs (no cron runs: LOCAL_SETTINGS)
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
            }
        )
        self.env = airflow_env(env)
        subprocess.run(
            [_airflow(), "db", "migrate"],
            env=self.env,
            check=True,
            stdout=self.log_path("db-migrate").open("w"),
            stderr=subprocess.STDOUT,
        )
        self._spawn("api-server", [_airflow(), "api-server", "--port", str(port)])
        self._spawn("scheduler", [_airflow(), "scheduler"])
        self._spawn("dag-processor", [_airflow(), "dag-processor"])
        for i in range(1, self.workers + 1):
            name = f"worker{i}"
            self._spawn(
                name,
                [
                    _airflow(),
                    "celery",
                    "worker",
                    "--concurrency",
                    "1",
                    "--queues",
                    queue,
                    "--celery-hostname",
                    f"{name}@exops",
                    "--pid",
                    str(self.workdir / f"{name}.pid"),
                    "--skip-serve-logs",
                    "--without-gossip",
                ],
                extra={HOSTNAME_ENV: name},
            )
        self._wait_ready(timeout)

    def _spawn(self, name: str, cmd: list[str], extra: dict[str, str] | None = None) -> None:
        env = dict(self.env, **(extra or {}))
        log = self.log_path(name).open("w")
        self.processes[name] = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                health = httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=5)
                workers_up = all(
                    "ready." in self.log_path(f"worker{i}").read_text()
                    for i in range(1, self.workers + 1)
                )
                if health.status_code == 200 and workers_up:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise ClusterError(f"the cluster did not come up in {timeout:.0f}s\n{self.log_tails()}")

    def check_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}
        if dead:
            raise ClusterError(f"Airflow processes exited: {dead}\n{self.log_tails()}")

    def log_tails(self, lines: int = 15) -> str:
        out = []
        for name in self.processes:
            text = self.log_path(name).read_text(errors="replace").splitlines()
            out.append(f"--- {name}\n" + "\n".join(text[-lines:]))
        return "\n".join(out)

    def stop(self) -> None:
        """Stop every process group this cluster started, then what it set up."""
        for proc in self.processes.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.processes.values():
            # the group too: Celery's pool children and task supervisors outlive a parent
            _signal_group(proc, signal.SIGKILL)
            if proc.poll() is None:
                proc.wait(timeout=10)
        self.processes.clear()
        while self._cleanups:
            self._cleanups.pop()()

    # ---- services -----------------------------------------------------------------------

    def _broker_url(self) -> str:
        if _reachable(*LOCAL_REDIS):
            return f"redis://{LOCAL_REDIS[0]}:{LOCAL_REDIS[1]}/{REDIS_DB}"
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            raise ClusterError("no Redis on 127.0.0.1:6379 and no redis-server binary to start")
        port = free_port()
        self._spawn(
            "redis",
            [redis_server, "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
            + ["--appendonly", "no", "--dir", str(self.workdir)],
        )
        deadline = time.monotonic() + 20
        while not _reachable("127.0.0.1", port):
            if time.monotonic() > deadline:
                raise ClusterError(f"redis-server did not start\n{self.log_tails()}")
            time.sleep(0.2)
        return f"redis://127.0.0.1:{port}/{REDIS_DB}"

    def _metadata_url(self) -> str:
        import psycopg

        if _reachable("127.0.0.1", 5432):
            admin = LOCAL_PG
        else:
            from exops.warehouse import _embedded_url

            admin = _embedded_url()
        dbname = f"exops_airflow_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'create database "{dbname}"')

        def drop() -> None:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'drop database if exists "{dbname}" with (force)')

        self._cleanups.append(drop)
        url = admin.replace("postgresql://", "postgresql+psycopg://", 1)
        head, sep, tail = url.partition("?")
        base = head.rsplit("/", 1)[0]
        return f"{base}/{quote(dbname)}{sep}{tail}"

    # ---- the REST API -------------------------------------------------------------------

    def token(self) -> str:
        """A JWT from /auth/token, fetched once (it outlives any test) and again on a 401."""
        if not self._token:
            response = httpx.post(
                f"{self.api_url}/auth/token",
                json={"username": ADMIN, "password": self.password},
                timeout=60,
            )
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs) -> httpx.Response:
        """A REST API call; a read is retried when the api-server is slow to answer (a busy
        machine), a write never is (a trigger must not happen twice)."""
        retries = 2 if method == "GET" else 0
        while True:
            headers = {"Authorization": f"Bearer {self.token()}"}
            try:
                response = httpx.request(
                    method, f"{self.api_url}/api/v2{path}", headers=headers, timeout=60, **kwargs
                )
            except httpx.TimeoutException:
                if not retries:
                    raise
                retries -= 1
                continue
            if response.status_code == 401 and retries:
                self._token, retries = "", retries - 1
                continue
            return response

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        missing = list(dag_ids)
        while missing and time.monotonic() < deadline:
            self.check_alive()
            missing = [d for d in missing if self.api("GET", f"/dags/{d}").status_code != 200]
            if missing:
                time.sleep(2)
        if missing:
            raise ClusterError(f"DAGs not parsed after {timeout:.0f}s: {missing}")

    def trigger(self, dag_id: str, logical_date: str, conf: dict | None = None) -> str:
        response = self.api(
            "POST",
            f"/dags/{dag_id}/dagRuns",
            json={"logical_date": logical_date, "conf": conf or {}},
        )
        if response.status_code >= 300:
            raise ClusterError(f"triggering {dag_id}: {response.status_code} {response.text}")
        return response.json()["dag_run_id"]

    def dag_runs(self, dag_id: str) -> list[dict]:
        """Every run of ``dag_id``, oldest first."""
        path = f"/dags/{dag_id}/dagRuns"
        response = self.api("GET", path, params={"order_by": "run_after", "limit": 100})
        response.raise_for_status()
        return response.json()["dag_runs"]

    def wait_for_first_run(self, dag_id: str, timeout: float = 120) -> dict:
        """The first run of ``dag_id`` once one exists (one the scheduler creates)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if runs := self.dag_runs(dag_id):
                return runs[0]
            time.sleep(1)
        raise ClusterError(f"no run of {dag_id} after {timeout:.0f}s\n{self.log_tails()}")

    def upstream_asset_events(self, dag_id: str, run_id: str) -> list[dict]:
        """The Asset events a run consumed (what an Asset-triggered run was started by)."""
        path = f"/dags/{dag_id}/dagRuns/{quote(run_id)}/upstreamAssetEvents"
        response = self.api("GET", path)
        response.raise_for_status()
        return response.json()["asset_events"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """A task's log file as the worker wrote it (the log folder is shared here)."""
        path = (
            Path(self.env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"])
            / f"dag_id={dag_id}"
            / f"run_id={run_id}"
            / f"task_id={task_id}"
            / f"attempt={try_number}.log"
        )
        return path.read_text(errors="replace")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            state = self.api("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id)}").json()["state"]
            if state in ("success", "failed"):
                return state
            time.sleep(2)
        raise ClusterError(f"{dag_id} run {run_id} not finished after {timeout:.0f}s")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances"
        return self.api("GET", path).json()["task_instances"]


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _forget_queue(broker: str, queue: str) -> None:
    """Remove the cluster's queue and Kombu's bindings for it from the shared Redis db."""
    import redis

    try:
        client = redis.Redis.from_url(broker, socket_timeout=5)
        client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        client.close()
    except redis.RedisError:
        pass  # a Redis this cluster started is gone with its data


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
