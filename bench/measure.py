"""Running a step as a subprocess while sampling its memory, and the PostgreSQL backends'."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import threading
import time
from dataclasses import dataclass, field

import psutil

POLL_SECONDS = 0.2
BACKEND_REFRESH_SECONDS = 1.0


@dataclass
class StepRun:
    name: str
    wall_s: float
    returncode: int
    peak_rss_mb: float  # the step's process tree (Python, airflow, psql), summed per sample
    peak_pg_private_mb: float  # the bench database's backends: RSS minus shared memory
    cpu_s: float = 0.0  # user + system CPU of the step's processes (less noisy than wall time)
    pg_cpu_s: float = 0.0  # CPU of the bench database's backends, as last sampled
    stdout: str = ""
    stderr: str = ""
    result: dict = field(default_factory=dict)  # the step's own JSON line, if any

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _private_rss(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            mem = psutil.Process(pid).memory_info()
        except psutil.Error:
            continue
        total += max(mem.rss - mem.shared, 0)
    return total


class _Sampler(threading.Thread):
    def __init__(self, pid: int, pg_url: str | None, dbname: str | None) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.pg_url = pg_url
        self.dbname = dbname
        self.peak_tree = 0
        self.peak_pg = 0
        self.pg_cpu: dict[int, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        conn = None
        if self.pg_url and self.dbname:
            import psycopg

            try:
                conn = psycopg.connect(self.pg_url, autocommit=True)
            except psycopg.Error:
                conn = None
        try:
            proc = psutil.Process(self.pid)
        except psutil.Error:
            return
        backends: list[int] = []
        refreshed = 0.0
        while not self.done.is_set():
            self.peak_tree = max(self.peak_tree, _tree_rss(proc))
            if conn is not None:
                now = time.monotonic()
                if now - refreshed >= BACKEND_REFRESH_SECONDS:
                    rows = conn.execute(
                        "select pid from pg_stat_activity"
                        " where datname = %s and pid <> pg_backend_pid()",
                        (self.dbname,),
                    ).fetchall()
                    backends = [r[0] for r in rows]
                    refreshed = now
                self.peak_pg = max(self.peak_pg, _private_rss(backends))
                self._sample_cpu(backends)
            self.done.wait(POLL_SECONDS)
        if conn is not None:
            conn.close()

    def _sample_cpu(self, pids: list[int]) -> None:
        for pid in pids:
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            self.pg_cpu[pid] = times.user + times.system


def last_json_line(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except ValueError:
                return {}
    return {}


def run_step(
    name: str,
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    pg_url: str | None = None,
    dbname: str | None = None,
    cwd: str | None = None,
) -> StepRun:
    """Run ``cmd`` to completion, timing it and sampling its memory every 0.2 s."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_before = usage.ru_utime + usage.ru_stime
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        env=env or dict(os.environ),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = _Sampler(proc.pid, pg_url, dbname)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return StepRun(
        name=name,
        wall_s=wall,
        returncode=proc.returncode,
        peak_rss_mb=sampler.peak_tree / 2**20,
        peak_pg_private_mb=sampler.peak_pg / 2**20,
        cpu_s=usage.ru_utime + usage.ru_stime - cpu_before,
        pg_cpu_s=sum(sampler.pg_cpu.values()),
        stdout=stdout,
        stderr=stderr,
        result=last_json_line(stdout),
    )
