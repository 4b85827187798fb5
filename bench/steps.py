"""One benchmark step per process, so its peak memory is its own.

    .venv/bin/python bench/steps.py <step> [args]

The parent (bench/run.py) sets EXOPS_WAREHOUSE_URL / EXOPS_VAR_DIR, watches this process's
memory and reads the JSON object printed as the last line of stdout: the step's own timing,
which leaves out the interpreter's start-up.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import date
from pathlib import Path


def ingest_step(landing: Path, entities: list[str] | None, url: str | None) -> dict:
    from exops.contract import read_landing_clock
    from exops.ingest import ingest

    started = time.perf_counter()
    # the simulated landing zone's clock is the run's date: its history is never future
    report = ingest(landing, url=url, entities=entities, today=read_landing_clock(landing))
    seconds = time.perf_counter() - started
    report.raise_for_failures()
    return {
        "seconds": seconds,
        "rows": report.rows_loaded,
        "rows_quarantined": report.rows_quarantined,
        "partitions": len(report.loaded),
    }


def to_sql_step(landing: Path, rows: int) -> dict:
    """pandas' ``DataFrame.to_sql`` of the first ``rows`` trades: the naive peer of COPY."""
    import pandas as pd
    from sqlalchemy import create_engine

    from exops import warehouse

    frames, have = [], 0
    for path in sorted(landing.glob("exchange/trades/dt=*/part-*.csv")):
        frame = pd.read_csv(path)
        frames.append(frame)
        have += len(frame)
        if have >= rows:
            break
    sample = pd.concat(frames).head(rows)
    url = warehouse.warehouse_url().replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url)
    started = time.perf_counter()
    sample.to_sql("to_sql_trades", engine, schema="public", if_exists="replace", index=False)
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"seconds": seconds, "rows": len(sample)}


# The pinned floor of the full build: one pass over the raw trades, both sides (a self-trade
# counts for maker and taker), per user, product and UTC day. Not the marts' logic; the
# least any build of per-user daily trading figures has to do with the same rows.
FLOOR_SQL = """
create unlogged table public.bench_floor as
with sides as (
    select taker_user_id as user_id, product_id, executed_at, quote_amount, taker_fee as fee
    from raw.exchange_trades
    union all
    select maker_user_id as user_id, product_id, executed_at, quote_amount, maker_fee as fee
    from raw.exchange_trades
)
select
    user_id,
    product_id,
    (executed_at at time zone 'UTC')::date as trade_date,
    count(*) as trades,
    sum(quote_amount) as quote_amount,
    sum(fee) as fees
from sides
group by user_id, product_id, (executed_at at time zone 'UTC')::date
"""


def floor_step() -> dict:
    """The floor query, timed, in a session set up as dbt's are (jit off, the same work_mem)."""
    import psycopg

    from exops import warehouse
    from exops.transform import session_options

    options = session_options()
    with psycopg.connect(warehouse.warehouse_url(), autocommit=True, options=options) as conn:
        conn.execute("drop table if exists public.bench_floor")
        started = time.perf_counter()
        conn.execute(FLOOR_SQL)
        seconds = time.perf_counter() - started
        rows = conn.execute("select count(*) from public.bench_floor").fetchone()[0]
        conn.execute("drop table public.bench_floor")
    return {"seconds": seconds, "rows": rows, "session_options": options}


def build_step(full_refresh: bool, label: str | None, empty_window: bool = False) -> dict:
    from exops.transform import build, dbt_var_dir

    result = build(full_refresh=full_refresh, skip_when_nothing_new=not empty_window)
    if empty_window and not result.window.startswith("nothing new"):
        raise SystemExit(f"the empty-window build's window was not empty: {result.window}")
    if not result.success:
        raise SystemExit(result.summary())
    # keep per-model timings: the next build overwrites target/run_results.json
    results = dbt_var_dir() / "target" / "run_results.json"
    kind = label or ("full" if full_refresh else "incremental")
    if results.exists():
        shutil.copyfile(results, dbt_var_dir() / f"run_results-{kind}.json")
    return {
        "seconds": result.elapsed_seconds,
        "models": result.models_passed,
        "tests": result.tests_passed,
        "unit_tests": result.unit_tests_passed,
    }


def validate_step(as_of: date) -> dict:
    from exops.quality import validate

    started = time.perf_counter()
    result = validate(as_of=as_of)
    return {"seconds": time.perf_counter() - started, "summary": result.summary()}


def publish_step(as_of: date) -> dict:
    from exops.publish import publish

    started = time.perf_counter()
    result = publish(as_of=as_of)
    seconds = time.perf_counter() - started
    if result.errors:
        raise SystemExit(result.summary())
    return {"seconds": seconds, "summary": result.summary()}


def dagbag_step(dag_folder: Path) -> dict:
    """Per-file parse time as Airflow's DagBag measures it (a fresh process: cold imports)."""
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    bag = DagBag(dag_folder=str(dag_folder))
    seconds = time.perf_counter() - started
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    return {
        "seconds": seconds,
        "files": {Path(s.file).name: s.duration.total_seconds() for s in bag.dagbag_stats},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("ingest")
    p.add_argument("--landing", type=Path, required=True)
    p.add_argument("--entity", action="append", default=None)
    p.add_argument("--url", default=None)
    p = sub.add_parser("to_sql")
    p.add_argument("--landing", type=Path, required=True)
    p.add_argument("--rows", type=int, default=200_000)
    p = sub.add_parser("build")
    p.add_argument("--full-refresh", action="store_true")
    p.add_argument("--label", help="keep run_results.json as run_results-<label>.json")
    p.add_argument(
        "--empty-window",
        action="store_true",
        help="run dbt even when nothing is new (every node, no rows to process)",
    )
    sub.add_parser("floor")
    for name in ("validate", "publish"):
        p = sub.add_parser(name)
        p.add_argument("--as-of", type=date.fromisoformat, required=True)
    p = sub.add_parser("dagbag")
    p.add_argument("--dag-folder", type=Path, required=True)
    args = parser.parse_args(argv)

    if args.step == "ingest":
        out = ingest_step(args.landing, args.entity, args.url)
    elif args.step == "to_sql":
        out = to_sql_step(args.landing, args.rows)
    elif args.step == "build":
        out = build_step(args.full_refresh, args.label, args.empty_window)
    elif args.step == "floor":
        out = floor_step()
    elif args.step == "validate":
        out = validate_step(args.as_of)
    elif args.step == "publish":
        out = publish_step(args.as_of)
    else:
        out = dagbag_step(args.dag_folder)
    sys.stdout.flush()
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
