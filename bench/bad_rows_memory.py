"""Peak memory of ``exops ingest`` on a file of bad rows (the target: under 512 MB for 1 GB).

    .venv/bin/python bench/bad_rows_memory.py [--mb 1024] [--url postgresql://...]

Writes one ``exchange/trades`` CSV of about ``--mb`` MB whose rows are all bad (an unknown
``taker_side``, a personal-looking e-mail in a free field, a long tail on every 50th row)
under var/bench/bad-rows/, ingests it into a scratch database (created and dropped on the
server of EXOPS_WAREHOUSE_URL or the embedded one) and prints the rows, the seconds and the
process's peak RSS. It needs about twice ``--mb`` of free disk (the file, then the
quarantine's spool and table).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

HEADER = (
    "trade_id,product_id,executed_at,price,quantity,quote_amount,taker_side,"
    "maker_user_id,taker_user_id,maker_fee,taker_fee\n"
)
DT = date(2026, 1, 2)
LIMIT_MB = 512


def write_bad_file(path: Path, megabytes: int) -> int:
    """A CSV of about ``megabytes`` MB of bad rows; the number of rows."""
    target = megabytes << 20
    rows = 0
    with path.open("w", newline="") as f:
        f.write(HEADER)
        written = len(HEADER)
        block: list[str] = []
        while written < target:
            tail = "z" * 6000 if rows % 50 == 0 else "x"
            line = (
                f"T{rows},BTC-USDT,2026-01-02T10:00:00Z,1,1,1,SIDEWAYS,"
                f"user{rows}@example.com,u_2,0,{tail}\n"
            )
            block.append(line)
            written += len(line)
            rows += 1
            if len(block) == 10_000:
                f.write("".join(block))
                block.clear()
        f.write("".join(block))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=1024, help="size of the file of bad rows")
    parser.add_argument("--url", default=None, help="server URL [default: the warehouse]")
    args = parser.parse_args(argv)

    import psycopg

    from exops import warehouse
    from exops.ingest import ingest
    from exops.settings import var_dir

    landing = var_dir() / "bench" / "bad-rows"
    shutil.rmtree(landing, ignore_errors=True)
    part = landing / "exchange" / "trades" / f"dt={DT.isoformat()}"
    part.mkdir(parents=True)
    print(f"writing ~{args.mb} MB of bad rows ...", flush=True)
    rows = write_bad_file(part / "bad.csv", args.mb)
    (part / "_SUCCESS").write_bytes(b"")
    size = (part / "bad.csv").stat().st_size
    server = args.url or warehouse.warehouse_url()
    dbname = f"exops_bench_bad_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'create database "{dbname}"')
    url = urlunsplit(urlsplit(server)._replace(path=f"/{dbname}"))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        started = time.perf_counter()
        report = ingest(landing, url=url, today=DT)
        seconds = time.perf_counter() - started
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{dbname}" with (force)')
        shutil.rmtree(landing, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"file: {size / 2**20:,.0f} MB, {rows:,} rows, all bad")
    print(
        f"loaded {report.rows_loaded:,}, quarantined {report.rows_quarantined:,} in {seconds:.1f}s"
    )
    print(f"peak RSS: {peak:,.0f} MB (before ingest: {rss_before:,.0f} MB; target < {LIMIT_MB} MB)")
    if report.rows_quarantined != rows:
        sys.exit("not every row was quarantined")


if __name__ == "__main__":
    main()
