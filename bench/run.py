"""Benchmark harness: load at COPY speed, pay for a day not for history.

    .venv/bin/python bench/run.py --scale small|large|history [--users N] [--days N]

Builds (or reuses) the scale's landing zone under var/bench/, creates a fresh database
``exops_bench_<scale>`` on the configured or embedded server, and measures, step by step and
each step in its own process: ingestion per entity, ``trades`` against ``psql \\copy`` and
pandas ``to_sql``, the pinned floor query, the full dbt build of all but the last two days,
the next day landed and built incrementally, a build with nothing new, that day's
``exops validate``, the last day through ``exops run``, the chain via Airflow and
in-process, and DAG parse time. ``--scale history`` runs only the steps up to the
incremental day, for 60,000 users with 180 and with 360 days, and compares the two days.
Prints the figures and the scale's targets and writes bench/results/<scale>-<timestamp>.json
(see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import figures
import psutil
import psycopg
from landing import SCALES, Scale, ensure_landing, history_pair, land_day, unland_days
from measure import StepRun, run_step

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
STEPS = str(ROOT / "bench" / "steps.py")
EXOPS = str(Path(PYTHON).with_name("exops"))
PSQL = "/usr/bin/psql"
RESULTS = ROOT / "bench" / "results"
_PIPELINE_DONE = re.compile(r"pipeline for \S+ finished in ([0-9.]+)s")
# the partition each orchestration run re-delivers (a small one: its re-load is not the work)
REDELIVERED = ("feedback", "tickets")


def pipeline_seconds(run: StepRun) -> float:
    """The pipeline time `exops run` prints, or the step's wall time if it printed none."""
    m = _PIPELINE_DONE.search(run.stdout)
    return float(m.group(1)) if m else run.wall_s


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def with_db(server_url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{dbname}"))


def recreate_database(server_url: str, dbname: str) -> str:
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{dbname}" with (force)')
        admin.execute(f'create database "{dbname}"')
    return with_db(server_url, dbname)


def drop_database(server_url: str, dbname: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'drop database if exists "{dbname}" with (force)')


class Bench:
    def __init__(
        self,
        scale: Scale,
        reps: int,
        orchestration_reps: int,
        *,
        day_only: bool = False,
        orchestration_only: bool = False,
    ) -> None:
        self.scale = scale
        self.reps = reps
        self.orchestration_reps = orchestration_reps
        self.orchestration_only = orchestration_only
        self.day_only = day_only  # only the steps up to the incremental day (history check)
        self.runs: list[dict] = []

    def step(self, name: str, cmd: list[str], *, db: str | None = None, url=None) -> StepRun:
        before = loadavg()
        run = run_step(name, cmd, pg_url=url or self.url, dbname=db or self.dbname)
        if not run.ok:
            tail = "\n".join((run.stdout + run.stderr).splitlines()[-30:])
            raise SystemExit(f"step {name} failed (exit {run.returncode}):\n{tail}")
        self.runs.append(
            {
                "step": name,
                "wall_s": round(run.wall_s, 3),
                "seconds": run.result.get("seconds"),
                "peak_rss_mb": round(run.peak_rss_mb, 1),
                "peak_pg_private_mb": round(run.peak_pg_private_mb, 1),
                "cpu_s": round(run.cpu_s, 2),
                "pg_cpu_s": round(run.pg_cpu_s, 2),
                "loadavg_before": before,
                "loadavg_after": loadavg(),
            }
        )
        inner = run.result.get("seconds")
        say(
            f"  {name}: {inner if inner is not None else run.wall_s:.2f}s"
            f" (wall {run.wall_s:.2f}s, peak RSS {run.peak_rss_mb:.0f} MB,"
            f" pg private {run.peak_pg_private_mb:.0f} MB, CPU {run.cpu_s:.1f}s + pg"
            f" {run.pg_cpu_s:.1f}s, load {before[0]})"
        )
        return run

    # ---- setup

    def prepare(self) -> None:
        from exops import warehouse

        var_bench = ROOT / "var" / "bench"
        var_bench.mkdir(parents=True, exist_ok=True)
        say(f"landing zone for {self.scale} ...")
        started = time.monotonic()
        self.landing, self.extra, simulated = ensure_landing(var_bench, self.scale)
        self.simulated_s = time.monotonic() - started if simulated else None
        say(f"  {'simulated' if simulated else 'reused'} {self.landing}")
        self.server_url = warehouse.warehouse_url()  # before EXOPS_VAR_DIR points elsewhere
        self.dbname = f"exops_bench_{self.scale.name}"
        if self.orchestration_only:
            # the warehouse a whole run of this scale left, its last day loaded
            self.url = with_db(self.server_url, self.dbname)
        else:
            self.url = recreate_database(self.server_url, self.dbname)
        self.var_dir = var_bench / self.scale.name
        for sub in () if self.orchestration_only else ("reports", "mail", "quality", "dbt"):
            subprocess.run(["rm", "-rf", str(self.var_dir / sub)], check=True)
        os.environ["EXOPS_WAREHOUSE_URL"] = self.url
        os.environ["EXOPS_VAR_DIR"] = str(self.var_dir)
        os.environ["EXOPS_LANDING_DIR"] = str(self.landing)
        from exops.publish.mailsink import start_sink

        if not os.environ.get("EXOPS_SMTP_HOST"):
            _host, port, self.stop_sink = start_sink(directory=self.var_dir / "mail")
            os.environ["EXOPS_SMTP_PORT"] = str(port)
        else:
            self.stop_sink = lambda: None

    # ---- ingestion

    def ingest_entities(self) -> dict:
        from exops.contract import ENTITIES

        per_entity = {}
        for e in ENTITIES:
            key = f"{e.source}/{e.name}"
            run = self.step(
                f"ingest {key}",
                [PYTHON, STEPS, "ingest", "--landing", str(self.landing), "--entity", key],
            )
            rows, seconds = run.result["rows"], run.result["seconds"]
            per_entity[key] = {
                "rows": rows,
                "seconds": round(seconds, 3),
                "rows_per_s": round(figures.rate(rows, seconds) or 0),
                "peak_rss_mb": round(run.peak_rss_mb, 1),
                "cpu_s": round(run.cpu_s + run.pg_cpu_s, 2),
            }
        return per_entity

    def trades_files(self) -> list[Path]:
        return sorted(self.landing.glob("exchange/trades/dt=*/part-*.csv"))

    def bare_copy(self) -> dict:
        """The same trades files through ``psql \\copy`` into a bare table (no checks)."""
        from exops.contract import entity

        e = entity("exchange", "trades")
        cols = ", ".join(f"{c.name} {c.pg_type}" for c in e.columns)
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("drop table if exists public.bare_trades")
            conn.execute(f"create table public.bare_trades ({cols})")
        script = self.var_dir / "bare_copy.sql"
        script.write_text(
            "".join(
                f"\\copy public.bare_trades from '{p}' with (format csv, header true)\n"
                for p in self.trades_files()
            )
        )
        run = self.step(
            "psql \\copy trades", [PSQL, self.url, "-q", "-v", "ON_ERROR_STOP=1", "-f", str(script)]
        )
        with psycopg.connect(self.url) as conn:
            rows = conn.execute("select count(*) from public.bare_trades").fetchone()[0]
        return {"rows": rows, "seconds": run.wall_s, "cpu_s": run.cpu_s + run.pg_cpu_s}

    def scratch_trades_ingest(self, rep: int) -> dict:
        """trades alone into a scratch database: a repetition of the ingest measurement."""
        name = f"{self.dbname}_scratch"
        url = recreate_database(self.server_url, name)
        try:
            run = self.step(
                f"ingest exchange/trades (rep {rep}, scratch db)",
                [
                    PYTHON,
                    STEPS,
                    "ingest",
                    "--landing",
                    str(self.landing),
                    "--entity",
                    "exchange/trades",
                    "--url",
                    url,
                ],
                db=name,
                url=url,
            )
        finally:
            drop_database(self.server_url, name)
        return {
            "rows": run.result["rows"],
            "seconds": run.result["seconds"],
            "cpu_s": run.cpu_s + run.pg_cpu_s,
        }

    # ---- the whole thing

    def run(self) -> dict:
        out: dict = {
            "scale": self.scale.name,
            "users": self.scale.users,
            "days": self.scale.days,
            "loaded_days": self.scale.loaded_days,
            "incremental_day": self.scale.incremental_day.isoformat(),
            "daily_run_day": self.scale.daily_run_day.isoformat(),
            "reps": self.reps,
            "orchestration_reps": self.orchestration_reps,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine_facts(),
            "loadavg_start": loadavg(),
        }
        self.prepare()
        out["simulate_s"] = self.simulated_s
        out["database"] = self.dbname
        try:
            if self.day_only:
                self._measure_day(out)
            elif self.orchestration_only:
                self._measure_orchestration(out)
            else:
                self._measure(out)
        except BaseException as exc:
            out["error"] = f"{type(exc).__name__}: {exc}"
            out["steps"] = self.runs
            save(out, partial=True)  # the figures measured so far are worth keeping
            raise
        finally:
            self.stop_sink()
            unland_days(self.landing, self.extra, self.scale.held_back)
        out["loadavg_end"] = loadavg()
        out["loadavg_during_max_1m"] = max(
            [r["loadavg_before"][0] for r in self.runs] + [r["loadavg_after"][0] for r in self.runs]
        )
        out["steps"] = self.runs
        out["peak_rss_mb_max"] = max(r["peak_rss_mb"] for r in self.runs)
        out["peak_rss_step"] = max(self.runs, key=lambda r: r["peak_rss_mb"])["step"]
        out["peak_pg_private_mb_max"] = max(r["peak_pg_private_mb"] for r in self.runs)
        if not self.day_only:  # the history check's target is on the pair (history_check)
            checks = figures.target_checks(out, self.scale.name)
            if self.orchestration_only:  # the targets of what it measured
                checks = [c for c in checks if c["value"] is not None]
            out["targets"] = {"held_to": figures.base_scale(self.scale.name), "checks": checks}
        return out

    def _measure(self, out: dict) -> None:
        say("ingest, one entity at a time ...")
        out["ingest"] = self.ingest_entities()
        trades = out["ingest"]["exchange/trades"]
        out["trades"] = trades["rows"]

        say(f"trades: exops ingest vs psql \\copy, {self.reps} repetition(s) ...")
        ingest_s, ingest_cpu = [trades["seconds"]], [trades["cpu_s"]]
        copies = [self.bare_copy()]
        for rep in range(2, self.reps + 1):
            again = self.scratch_trades_ingest(rep)
            ingest_s.append(again["seconds"])
            ingest_cpu.append(again["cpu_s"])
            copies.append(self.bare_copy())
        if copies[0]["rows"] != trades["rows"]:
            say(f"  warning: COPY loaded {copies[0]['rows']} rows, ingest {trades['rows']}")
        copy_s = [c["seconds"] for c in copies]
        out["ingest_trades_s"] = [round(s, 3) for s in ingest_s]
        out["copy_trades_s"] = [round(s, 3) for s in copy_s]
        out["ingest_rows_per_s"] = round(figures.rate(trades["rows"], figures.median(ingest_s)))
        out["copy_rows_per_s"] = round(figures.rate(copies[0]["rows"], figures.median(copy_s)))
        out["ingest_vs_copy"] = figures.ratio(out["ingest_rows_per_s"], out["copy_rows_per_s"])
        # CPU seconds (client and server) are far less sensitive to other users' load
        out["ingest_trades_cpu_s"] = [round(c, 2) for c in ingest_cpu]
        out["copy_trades_cpu_s"] = [round(c["cpu_s"], 2) for c in copies]
        out["ingest_vs_copy_cpu"] = figures.ratio(
            figures.median(out["copy_trades_cpu_s"]), figures.median(ingest_cpu)
        )
        out["ingest_trades_spread"] = figures.spread(ingest_s)
        out["copy_trades_spread"] = figures.spread(copy_s)

        say("trades: pandas to_sql on a 200,000-row sample ...")
        run = self.step(
            "pandas to_sql trades sample",
            [PYTHON, STEPS, "to_sql", "--landing", str(self.landing), "--rows", "200000"],
        )
        out["to_sql_rows"] = run.result["rows"]
        out["to_sql_rows_per_s"] = round(figures.rate(run.result["rows"], run.result["seconds"]))
        out["ingest_vs_to_sql"] = figures.ratio(out["ingest_rows_per_s"], out["to_sql_rows_per_s"])

        say("the floor: create unlogged table ... as select over the raw trades ...")
        run = self.step("floor (raw trades by user, product, day)", [PYTHON, STEPS, "floor"])
        out["floor_s"] = run.result["seconds"]
        out["floor_rows"] = run.result["rows"]
        out["floor_session_options"] = run.result["session_options"]

        last_day = self.scale.last_loaded_day
        self.full_build(out)
        out["validate_s"] = self.step(
            "validate", [PYTHON, STEPS, "validate", "--as-of", last_day.isoformat()]
        ).result["seconds"]
        out["publish_s"] = self.step(
            "publish", [PYTHON, STEPS, "publish", "--as-of", last_day.isoformat()]
        ).result["seconds"]

        day = self.scale.incremental_day
        self.incremental_day(out)
        say(f"{day}: exops validate and exops publish, each a whole process ...")
        run = self.step("exops validate (one day)", [EXOPS, "validate", "--as-of", day.isoformat()])
        out["validate_day_s"] = run.wall_s
        run = self.step("exops publish (one day)", [EXOPS, "publish", "--as-of", day.isoformat()])
        out["publish_day_s"] = run.wall_s

        day = self.scale.daily_run_day
        say(f"the last day ({day}) lands: exops run --via direct, the whole process ...")
        out["daily_run_day_partitions"] = land_day(self.landing, self.extra, day)
        run = self.step("exops run --via direct (new day)", self.exops_run(day, "direct"))
        out["daily_run_s"] = run.wall_s
        m = _PIPELINE_DONE.search(run.stdout)
        out["daily_run_pipeline_s"] = float(m.group(1)) if m else None

        out.update(figures.derived_keys(out))
        dbt_dir = self.var_dir / "dbt"
        for kind in ("full", "incremental", "noop", "empty_window"):
            out[f"{kind}_build_slowest"] = slowest_nodes(dbt_dir / f"run_results-{kind}.json")

        out.update(self.orchestration(day))
        out.update(self.dag_parse())

    def _measure_orchestration(self, out: dict) -> None:
        """Only the orchestration pairs, on the warehouse a whole run of this scale left (its
        two held-back days loaded): after a change to the DAGs or Airflow's set-up."""
        day = self.scale.daily_run_day
        try:
            with psycopg.connect(self.url) as conn:
                loaded = conn.execute("select max(partition_date) from audit.partitions").fetchone()
        except psycopg.Error as exc:
            raise SystemExit(
                f"{self.dbname}: {exc}: run the whole benchmark of scale {self.scale.name} first"
            ) from None
        if loaded[0] != day:
            raise SystemExit(
                f"{self.dbname}: last loaded day {loaded[0]}, not {day}: run the whole"
                f" benchmark of scale {self.scale.name} first"
            )
        for held_back in (self.scale.incremental_day, day):
            land_day(self.landing, self.extra, held_back)
        out["orchestration_only"] = True
        out.update(self.orchestration(day))

    def _measure_day(self, out: dict) -> None:
        """Only what leads to an incremental day: load, full build, the day, a no-op build."""
        say("ingest, all entities in one process ...")
        run = self.step("ingest", [PYTHON, STEPS, "ingest", "--landing", str(self.landing)])
        out["ingest_s"] = run.result["seconds"]
        out["ingest_rows"] = run.result["rows"]
        self.full_build(out)
        self.incremental_day(out)
        out.update(figures.derived_keys(out))
        out["incremental_build_slowest"] = slowest_nodes(
            self.var_dir / "dbt" / "run_results-incremental.json"
        )

    def full_build(self, out: dict) -> None:
        say("dbt build --full-refresh ...")
        run = self.step("dbt build --full-refresh", [PYTHON, STEPS, "build", "--full-refresh"])
        out["full_build_s"] = run.result["seconds"]
        out["dbt_nodes"] = {k: run.result[k] for k in ("models", "tests", "unit_tests")}

    def incremental_day(self, out: dict) -> None:
        """The next day lands and is built incrementally; then a build with nothing new."""
        day = self.scale.incremental_day
        say(f"one more day ({day}) lands: ingest it, an incremental build, a no-op build ...")
        out["incremental_day_partitions"] = land_day(self.landing, self.extra, day)
        run = self.step("ingest the day", [PYTHON, STEPS, "ingest", "--landing", str(self.landing)])
        out["ingest_day_s"] = run.result["seconds"]
        out["ingest_day_rows"] = run.result["rows"]
        run = self.step("dbt build (incremental, one new day)", [PYTHON, STEPS, "build"])
        out["incremental_day_s"] = run.result["seconds"]
        run = self.step("dbt build (nothing new)", [PYTHON, STEPS, "build", "--label", "noop"])
        out["noop_build_s"] = run.result["seconds"]
        # dbt on that empty window: what a day's build costs before any of its rows (dbt's
        # start and every node's own work, none with rows to process)
        run = self.step(
            "dbt build (an empty window: dbt runs, nothing new)",
            [PYTHON, STEPS, "build", "--empty-window", "--label", "empty_window"],
        )
        out["empty_window_build_s"] = run.result["seconds"]
        # the same window again, its data unchanged but for one small re-delivered partition:
        # the window's rows are built a second time (dbt's fixed cost is empty_window_build_s)
        self.redeliver(day)
        self.step(
            "ingest the re-delivered tickets",
            [PYTHON, STEPS, "ingest", "--landing", str(self.landing)],
        )
        run = self.step(
            "dbt build (the same window, one re-delivered partition)",
            [PYTHON, STEPS, "build", "--label", "same-window"],
        )
        out["same_window_build_s"] = run.result["seconds"]

    def exops_run(self, day: date, via: str) -> list[str]:
        return [
            EXOPS,
            "run",
            "--landing",
            str(self.landing),
            "--date",
            day.isoformat(),
            "--via",
            via,
        ]

    def orchestration(self, day: date) -> dict:
        """`exops run` via Airflow and in-process for the same day's work, alternated.

        A day with work: before each run the day's ``feedback/tickets`` partition is taken back
        out (``exops unload``, not timed), so each run ingests it again and builds the change
        window a new day brings (every model and data test over the day and its late-arrival
        days, so every model task of exops_transform runs), validates and publishes: the same
        work both ways. Then one pair with nothing new (an ingest that finds nothing, no dbt,
        validation, an idempotent publish): Airflow's fixed cost alone.
        """
        from exops.airflow_local import airflow_env, ensure_metadata_db

        say("orchestration: exops run --via airflow vs --via direct (same day, same work) ...")
        ensure_metadata_db(airflow_env())  # one-off set-up, not timed
        times: dict[str, list[float]] = {"airflow": [], "direct": []}
        walls: dict[str, list[float]] = {"airflow": [], "direct": []}
        for rep in range(1, self.orchestration_reps + 1):
            for via in ("direct", "airflow"):
                self.redeliver(day)
                run = self.step(
                    f"exops run --via {via} (rep {rep}, re-delivered tickets)",
                    self.exops_run(day, via),
                )
                times[via].append(pipeline_seconds(run))
                walls[via].append(run.wall_s)
        idle: dict[str, float] = {}
        for via in ("direct", "airflow"):
            run = self.step(f"exops run --via {via} (nothing new)", self.exops_run(day, via))
            idle[via] = pipeline_seconds(run)
        return {
            "pipeline_airflow_s": times["airflow"],
            "pipeline_direct_s": times["direct"],
            "exops_run_wall_airflow_s": [round(w, 2) for w in walls["airflow"]],
            "exops_run_wall_direct_s": [round(w, 2) for w in walls["direct"]],
            "airflow_vs_cli": figures.ratio(
                figures.median(times["airflow"]), figures.median(times["direct"])
            ),
            "airflow_vs_cli_wall": figures.ratio(
                figures.median(walls["airflow"]), figures.median(walls["direct"])
            ),
            "pipeline_airflow_noop_s": idle["airflow"],
            "pipeline_direct_noop_s": idle["direct"],
            "airflow_vs_cli_noop": figures.ratio(idle["airflow"], idle["direct"]),
        }

    def redeliver(self, day: date) -> None:
        """Take the day's tickets partition back out; the next ingest loads it again."""
        source, entity = REDELIVERED
        cmd = [EXOPS, "unload", "--source", source, "--entity", entity, "--dt", day.isoformat()]
        cmd += ["--note", "bench: the same day's work for each exops run"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"exops unload failed:\n{done.stdout}{done.stderr}")

    def dag_parse(self) -> dict:
        from exops.airflow_local import airflow_env

        say("DAG parse times (DagBag, a fresh process each) ...")
        per_file: dict[str, list[float]] = {}
        env = airflow_env()
        for rep in range(1, self.reps + 1):
            before = loadavg()
            run = run_step(
                f"dagbag (rep {rep})",
                [PYTHON, STEPS, "dagbag", "--dag-folder", str(ROOT / "dags")],
                env=env,
            )
            if not run.ok:
                raise SystemExit(f"DagBag failed:\n{run.stderr[-3000:]}")
            self.runs.append(
                {
                    "step": f"dagbag (rep {rep})",
                    "wall_s": round(run.wall_s, 3),
                    "seconds": run.result["seconds"],
                    "peak_rss_mb": round(run.peak_rss_mb, 1),
                    "peak_pg_private_mb": 0.0,
                    "loadavg_before": before,
                    "loadavg_after": loadavg(),
                }
            )
            for name, seconds in run.result["files"].items():
                per_file.setdefault(name, []).append(seconds)
        medians = {name: figures.median(v) for name, v in per_file.items()}
        return {
            "dag_parse_s": {name: [round(s, 4) for s in v] for name, v in per_file.items()},
            "dag_parse_max_s": max(medians.values()),
        }


def machine_facts() -> dict:
    mem = psutil.virtual_memory()
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(mem.total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "nice": os.nice(0),
        "commit": commit,
    }


def orchestration_rows(r: dict) -> list[tuple[str, object, str]]:
    return [
        (
            "pipeline via airflow s",
            figures.median(r["pipeline_airflow_s"]),
            f"{r['pipeline_airflow_s']} (re-delivered tickets: a day's dbt build)",
        ),
        (
            "pipeline via direct s",
            figures.median(r["pipeline_direct_s"]),
            f"{r['pipeline_direct_s']} (re-delivered tickets: a day's dbt build)",
        ),
        ("airflow_vs_cli", r["airflow_vs_cli"], "airflow / direct, a day's work"),
        (
            "airflow_vs_cli_noop",
            r["airflow_vs_cli_noop"],
            f"{r['pipeline_airflow_noop_s']} / {r['pipeline_direct_noop_s']} s, nothing new",
        ),
    ]


def summary_rows(r: dict) -> list[tuple[str, object, str]]:
    day_note = r["daily_run_day"]
    if r["daily_run_pipeline_s"] is not None:
        day_note += f" (its pipeline {r['daily_run_pipeline_s']:.1f} s)"
    rows: list[tuple[str, object, str]] = [
        ("scale", f"{r['scale']} ({r['users']:,} users x {r['days']} days)", ""),
        ("trades rows", r["trades"], f"{r['loaded_days']} days loaded before the full build"),
    ]
    for key, e in r["ingest"].items():
        rows.append((f"ingest {key} rows/s", e["rows_per_s"], f"{e['rows']:,} rows"))
    rows += [
        ("ingest trades rows/s", r["ingest_rows_per_s"], f"median of {r['ingest_trades_s']} s"),
        ("psql \\copy trades rows/s", r["copy_rows_per_s"], f"median of {r['copy_trades_s']} s"),
        ("ingest_vs_copy", r["ingest_vs_copy"], "earlier target >= 0.5, no longer checked"),
        ("ingest_vs_copy by CPU seconds", r["ingest_vs_copy_cpu"], "client + server CPU"),
        ("to_sql rows/s (200k sample)", r["to_sql_rows_per_s"], ""),
        ("ingest_vs_to_sql", r["ingest_vs_to_sql"], ""),
        ("floor_s", r["floor_s"], f"{r['floor_rows']:,} user-product-days"),
        ("full_build_s", r["full_build_s"], "dbt build --full-refresh"),
        ("full_build_vs_floor", r["full_build_vs_floor"], ""),
        ("validate_s", r["validate_s"], "after the full build, as of its last day"),
        ("publish_s", r["publish_s"], ""),
        (
            "ingest_day_s",
            r["ingest_day_s"],
            f"{r['ingest_day_rows']:,} rows, {r['incremental_day']}",
        ),
        ("incremental_day_s", r["incremental_day_s"], "dbt build after one new day"),
        ("noop_build_s", r["noop_build_s"], "dbt build with nothing new"),
        ("day_marginal_s", r["day_marginal_s"], "incremental_day_s - noop_build_s"),
        ("day_marginal_vs_full", r["day_marginal_vs_full"], "day_marginal_s / full_build_s"),
        (
            "empty_window_build_s",
            r.get("empty_window_build_s"),
            "dbt on an empty window: its start and every node, no rows",
        ),
        ("day_rows_s", r.get("day_rows_s"), "incremental_day_s - empty_window_build_s"),
        ("day_rows_vs_full", r.get("day_rows_vs_full"), "day_rows_s / full_build_s"),
        (
            "same_window_build_s",
            r.get("same_window_build_s"),
            "the day's window again, one small partition re-delivered",
        ),
        ("day_data_s", r.get("day_data_s"), "incremental_day_s - same_window_build_s"),
        ("day_data_vs_full", r.get("day_data_vs_full"), "day_data_s / full_build_s"),
        ("incremental_vs_full", r["incremental_vs_full"], "no longer a target"),
        ("validate_day_s", r["validate_day_s"], "exops validate, whole process"),
        ("publish_day_s", r["publish_day_s"], "exops publish, whole process"),
        ("daily_run_s", r["daily_run_s"], f"exops run --via direct, whole process, {day_note}"),
        *orchestration_rows(r),
        ("dag_parse_max_s", r["dag_parse_max_s"], ""),
        ("peak_rss_mb_max", r["peak_rss_mb_max"], r["peak_rss_step"]),
        ("peak_pg_private_mb_max", r["peak_pg_private_mb_max"], "bench db backends, RSS - shared"),
        ("load average start/end", f"{r['loadavg_start']} / {r['loadavg_end']}", ""),
        ("load average max (1 min)", r["loadavg_during_max_1m"], ""),
    ]
    return rows


def custom_scale(base: Scale, users: int | None, days: int | None) -> Scale:
    """``base`` with other users or days, named e.g. ``large_200000x730``."""
    users = users or base.users
    days = days or base.days
    return Scale(f"{base.name}_{users}x{days}", users, days, base.start, base.seed)


def slowest_nodes(run_results: Path, count: int = 12) -> list[dict]:
    """The dbt nodes that took longest in a build (from its run_results.json)."""
    if not run_results.exists():
        return []
    results = json.loads(run_results.read_text())["results"]
    top = sorted(results, key=lambda r: r["execution_time"], reverse=True)[:count]
    return [{"node": r["unique_id"], "s": round(r["execution_time"], 2)} for r in top]


def save(results: dict, *, partial: bool = False) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = "-partial" if partial else ""
    path = RESULTS / f"{results['scale']}-{stamp}{suffix}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return path


def history_check(pair: tuple[Scale, Scale], reps: int) -> dict:
    """A day costs the same whatever the history: the same users, a history and twice that."""
    runs = []
    environ = dict(os.environ)
    for scale in pair:
        bench = Bench(scale, reps, 1, day_only=True)
        try:
            runs.append(bench.run())
        finally:
            if hasattr(bench, "dbname"):  # up to tens of GB, not needed later
                drop_database(bench.server_url, bench.dbname)
            # a run points EXOPS_WAREHOUSE_URL and EXOPS_VAR_DIR at its own database
            os.environ.clear()
            os.environ.update(environ)
        say(f"  {scale.name}: incremental_day_s {runs[-1]['incremental_day_s']:.1f}")
    short, long = runs
    out = {
        "scale": f"history_{short['users']}x{short['days']}-{long['days']}",
        "started_at": short["started_at"],
        "machine": short["machine"],
        "runs": runs,
        "history_incremental_ratio": figures.history_ratio(short, long),
    }
    out["targets"] = {"held_to": "history", "checks": figures.target_checks(out, "history")}
    return out


def history_rows(r: dict) -> list[tuple[str, object, str]]:
    rows: list[tuple[str, object, str]] = []
    for run in r["runs"]:
        label = f"{run['users']:,} x {run['days']} days"
        rows += [
            (f"full_build_s ({label})", run["full_build_s"], ""),
            (f"incremental_day_s ({label})", run["incremental_day_s"], run["incremental_day"]),
            (f"noop_build_s ({label})", run["noop_build_s"], ""),
        ]
    rows.append(
        (
            "history_incremental_ratio",
            r["history_incremental_ratio"],
            "incremental_day_s, long history / short",
        )
    )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale",
        choices=[*sorted(SCALES), "history"],
        default="small",
        help="history: 60,000 users x 180 and x 360 days, up to the incremental day",
    )
    parser.add_argument(
        "--users", type=int, default=None, help="override the scale's users (e.g. the history test)"
    )
    parser.add_argument(
        "--days",
        type=int,
        default=None,
        help="override the scale's simulated days, the 2 held back included"
        " (history: the shorter of the pair, the other is twice as long)",
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions of the cheap steps")
    parser.add_argument(
        "--orchestration-reps",
        type=int,
        default=2,
        help="repetitions of each `exops run` (a few minutes each)",
    )
    parser.add_argument(
        "--orchestration-only",
        action="store_true",
        help="only the `exops run` pairs, on the warehouse a whole run of the scale left",
    )
    args = parser.parse_args(argv)

    try:
        pair = history_pair(args.users, args.days) if args.scale == "history" else None
        scale = SCALES.get(args.scale)
        if scale and (args.users or args.days):
            scale = custom_scale(scale, args.users, args.days)
    except ValueError as exc:
        parser.error(str(exc))
    if pair:
        results = history_check(pair, max(1, args.reps))
        required, rows = figures.HISTORY_REQUIRED_KEYS, history_rows(results)
    else:
        bench = Bench(
            scale,
            max(1, args.reps),
            max(1, args.orchestration_reps),
            orchestration_only=args.orchestration_only,
        )
        results = bench.run()
        if args.orchestration_only:
            required = figures.ORCHESTRATION_REQUIRED_KEYS
            rows = [
                *orchestration_rows(results),
                ("peak_rss_mb_max", results["peak_rss_mb_max"], results["peak_rss_step"]),
            ]
        else:
            required, rows = figures.REQUIRED_KEYS, summary_rows(results)
    missing = figures.missing_keys(results, required)
    if missing:
        raise SystemExit(f"internal error: result keys missing: {missing}")
    path = save(results)
    print(figures.table(rows))
    print(f"\ntargets ({results['targets']['held_to']}):")
    print(figures.targets_table(results["targets"]["checks"]))
    print(f"\nresults: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
