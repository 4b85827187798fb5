"""Benchmark harness: load at COPY speed, pay for a day not for history.

    .venv/bin/python bench/run.py --scale small|large [--reps 3]

Builds (or reuses) the scale's landing zone under var/bench/, creates a fresh database
``exops_bench_<scale>`` on the configured or embedded server, and measures, step by step and
each step in its own process: ingestion per entity, ``trades`` against ``psql \\copy`` and
pandas ``to_sql``, the full dbt build, one more day landed and built incrementally,
validation, publishing, the same day's chain via Airflow and in-process, and DAG parse time.
Prints a table and writes bench/results/<scale>-<timestamp>.json (see bench/README.md).
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
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import figures
import psutil
import psycopg
from landing import SCALES, Scale, ensure_landing, land_extra_day, unland_extra_day
from measure import StepRun, run_step

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
STEPS = str(ROOT / "bench" / "steps.py")
EXOPS = str(Path(PYTHON).with_name("exops"))
PSQL = "/usr/bin/psql"
RESULTS = ROOT / "bench" / "results"
_PIPELINE_DONE = re.compile(r"pipeline for \S+ finished in ([0-9.]+)s")


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
    def __init__(self, scale: Scale, reps: int, orchestration_reps: int) -> None:
        self.scale = scale
        self.reps = reps
        self.orchestration_reps = orchestration_reps
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
        self.url = recreate_database(self.server_url, self.dbname)
        self.var_dir = var_bench / self.scale.name
        for sub in ("reports", "mail", "quality", "dbt"):
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
            self._measure(out)
        except BaseException as exc:
            out["error"] = f"{type(exc).__name__}: {exc}"
            out["steps"] = self.runs
            save(out, partial=True)  # the figures measured so far are worth keeping
            raise
        finally:
            self.stop_sink()
            unland_extra_day(self.landing, self.extra, self.scale.extra_day)
        out["loadavg_end"] = loadavg()
        out["loadavg_during_max_1m"] = max(
            [r["loadavg_before"][0] for r in self.runs] + [r["loadavg_after"][0] for r in self.runs]
        )
        out["steps"] = self.runs
        out["peak_rss_mb_max"] = max(r["peak_rss_mb"] for r in self.runs)
        out["peak_rss_step"] = max(self.runs, key=lambda r: r["peak_rss_mb"])["step"]
        out["peak_pg_private_mb_max"] = max(r["peak_pg_private_mb"] for r in self.runs)
        out["targets_met"] = figures.verdicts(out)
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

        last_day = self.scale.extra_day - timedelta(days=1)
        say("dbt build --full-refresh ...")
        run = self.step("dbt build --full-refresh", [PYTHON, STEPS, "build", "--full-refresh"])
        out["full_build_s"] = run.result["seconds"]
        out["dbt_nodes"] = {k: run.result[k] for k in ("models", "tests", "unit_tests")}
        out["validate_s"] = self.step(
            "validate", [PYTHON, STEPS, "validate", "--as-of", last_day.isoformat()]
        ).result["seconds"]
        out["publish_s"] = self.step(
            "publish", [PYTHON, STEPS, "publish", "--as-of", last_day.isoformat()]
        ).result["seconds"]

        day = self.scale.extra_day
        say(f"one more day ({day}) lands: ingest it, then an incremental build ...")
        out["extra_day_partitions"] = land_extra_day(self.landing, self.extra, day)
        run = self.step(
            "ingest the extra day", [PYTHON, STEPS, "ingest", "--landing", str(self.landing)]
        )
        out["ingest_extra_day_s"] = run.result["seconds"]
        out["ingest_extra_day_rows"] = run.result["rows"]
        run = self.step("dbt build (incremental, one new day)", [PYTHON, STEPS, "build"])
        out["incremental_day_s"] = run.result["seconds"]
        out["incremental_vs_full"] = figures.ratio(out["incremental_day_s"], out["full_build_s"])
        dbt_dir = self.var_dir / "dbt"
        out["full_build_slowest"] = slowest_nodes(dbt_dir / "run_results-full.json")
        out["incremental_day_slowest"] = slowest_nodes(dbt_dir / "run_results-incremental.json")
        out["validate_extra_day_s"] = self.step(
            "validate (extra day)", [PYTHON, STEPS, "validate", "--as-of", day.isoformat()]
        ).result["seconds"]
        out["publish_extra_day_s"] = self.step(
            "publish (extra day)", [PYTHON, STEPS, "publish", "--as-of", day.isoformat()]
        ).result["seconds"]

        out.update(self.orchestration(day))
        out.update(self.dag_parse())

    def orchestration(self, day: date) -> dict:
        """`exops run` for the same, already loaded day: via Airflow and in-process, alternated.

        Both do the same work: an ingest that finds nothing new (checksums every file), an
        incremental dbt build with nothing new, validation, an idempotent publish.
        """
        from exops.airflow_local import airflow_env, ensure_metadata_db

        say("orchestration: exops run --via airflow vs --via direct (same day, same work) ...")
        ensure_metadata_db(airflow_env())  # one-off set-up, not timed
        times: dict[str, list[float]] = {"airflow": [], "direct": []}
        walls: dict[str, list[float]] = {"airflow": [], "direct": []}
        for rep in range(1, self.orchestration_reps + 1):
            for via in ("direct", "airflow"):
                cmd = [EXOPS, "run", "--landing", str(self.landing), "--date", day.isoformat()]
                run = self.step(f"exops run --via {via} (rep {rep})", [*cmd, "--via", via])
                m = _PIPELINE_DONE.search(run.stdout)
                times[via].append(float(m.group(1)) if m else run.wall_s)
                walls[via].append(run.wall_s)
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
        }

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


def summary_rows(r: dict) -> list[tuple[str, object, str]]:
    met = r.get("targets_met", {})

    def verdict(key: str) -> str:
        target = {k: f"{c} {t}" for k, c, t in figures.TARGETS}[key]
        state = met.get(key)
        return f"target {target}: " + ("met" if state else "MISSED" if state is False else "-")

    rows: list[tuple[str, object, str]] = [
        ("scale", f"{r['scale']} ({r['users']:,} users x {r['days']} days)", ""),
        ("trades rows", r["trades"], ""),
    ]
    for key, e in r["ingest"].items():
        rows.append((f"ingest {key} rows/s", e["rows_per_s"], f"{e['rows']:,} rows"))
    rows += [
        ("ingest trades rows/s", r["ingest_rows_per_s"], f"median of {r['ingest_trades_s']} s"),
        ("psql \\copy trades rows/s", r["copy_rows_per_s"], f"median of {r['copy_trades_s']} s"),
        ("ingest_vs_copy", r["ingest_vs_copy"], verdict("ingest_vs_copy")),
        ("ingest_vs_copy by CPU seconds", r["ingest_vs_copy_cpu"], "client + server CPU"),
        ("to_sql rows/s (200k sample)", r["to_sql_rows_per_s"], ""),
        ("ingest_vs_to_sql", r["ingest_vs_to_sql"], ""),
        ("full_build_s", r["full_build_s"], "dbt build --full-refresh"),
        ("ingest_extra_day_s", r["ingest_extra_day_s"], f"{r['ingest_extra_day_rows']:,} rows"),
        ("incremental_day_s", r["incremental_day_s"], "dbt build after one new day"),
        ("incremental_vs_full", r["incremental_vs_full"], verdict("incremental_vs_full")),
        ("validate_s", r["validate_s"], f"extra day {r['validate_extra_day_s']:.1f}s"),
        ("publish_s", r["publish_s"], f"extra day {r['publish_extra_day_s']:.1f}s"),
        (
            "pipeline via airflow s",
            figures.median(r["pipeline_airflow_s"]),
            str(r["pipeline_airflow_s"]),
        ),
        (
            "pipeline via direct s",
            figures.median(r["pipeline_direct_s"]),
            str(r["pipeline_direct_s"]),
        ),
        ("airflow_vs_cli", r["airflow_vs_cli"], verdict("airflow_vs_cli")),
        ("dag_parse_max_s", r["dag_parse_max_s"], verdict("dag_parse_max_s")),
        (
            "peak_rss_mb_max",
            r["peak_rss_mb_max"],
            verdict("peak_rss_mb_max") + f" ({r['peak_rss_step']})",
        ),
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument(
        "--users", type=int, default=None, help="override the scale's users (e.g. the history test)"
    )
    parser.add_argument(
        "--days", type=int, default=None, help="override the scale's days (e.g. twice the history)"
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions of the cheap steps")
    parser.add_argument(
        "--orchestration-reps",
        type=int,
        default=2,
        help="repetitions of each `exops run` (a few minutes each)",
    )
    args = parser.parse_args(argv)

    scale = SCALES[args.scale]
    if args.users or args.days:
        scale = custom_scale(scale, args.users, args.days)
    bench = Bench(scale, max(1, args.reps), max(1, args.orchestration_reps))
    results = bench.run()
    missing = figures.missing_keys(results)
    if missing:
        raise SystemExit(f"internal error: result keys missing: {missing}")
    path = save(results)
    print(figures.table(summary_rows(results)))
    print(f"\nresults: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
