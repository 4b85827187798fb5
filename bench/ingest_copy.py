"""Loading speed of ``ingest`` against a bare ``COPY ... (format csv, header true)``.

    python bench/ingest_copy.py --rows 500000 [--url postgresql://...]

Writes a landing zone with one ``exchange/trades`` partition of ``--rows`` rows, COPYs the
file as is into a bare table with the raw table's columns (no checks, no audit), then
ingests it, and prints both rates. Uses (and drops) a scratch database on the server.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from exops import warehouse
from exops.contract import entity

HEADER = (
    "trade_id,product_id,executed_at,price,quantity,quote_amount,taker_side,"
    "maker_user_id,taker_user_id,maker_fee,taker_fee\n"
)


def write_trades(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with open(path, "w", newline="") as f:
        f.write(HEADER)
        for i in range(rows):
            price = rng.randint(100_000, 9_000_000) / 100
            qty = rng.randint(1, 100_000) / 10_000
            side = "buy" if i % 2 else "sell"
            f.write(
                f"T-{i:09d},BTC-USDT,2026-01-02T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:"
                f"{i % 60:02d}.{i % 1000:03d}+08:00,{price:.2f},{qty:.4f},{price * qty:.6f},"
                f"{side},u_{rng.randint(1, 99999):06d},u_{rng.randint(1, 99999):06d},"
                f"-{price * qty * 0.0001:.8f},{price * qty * 0.0005:.8f}\n"
            )


def bare_copy_seconds(url: str, csv_path: Path) -> float:
    e = entity("exchange", "trades")
    cols = ", ".join(f"{c.name} {c.pg_type}" for c in e.columns)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"create table bare_trades ({cols})")
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            sql = "copy bare_trades from stdin (format csv, header true)"
            with cur.copy(sql) as copy, open(csv_path, "rb") as f:
                while chunk := f.read(1 << 20):
                    copy.write(chunk)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--url", default=None, help="server URL (default: the warehouse)")
    args = parser.parse_args()

    from exops.ingest import ingest

    server = args.url or warehouse.warehouse_url()
    dbname = f"exops_bench_{uuid.uuid4().hex[:8]}"
    url = urlunsplit(urlsplit(server)._replace(path=f"/{dbname}"))
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'create database "{dbname}"')
    try:
        with tempfile.TemporaryDirectory() as tmp:
            part = Path(tmp, "exchange", "trades", "dt=2026-01-02")
            part.mkdir(parents=True)
            csv_path = part / "part-0.csv"
            write_trades(csv_path, args.rows)
            (part / "_SUCCESS").touch()
            size_mb = csv_path.stat().st_size / 1e6
            bare = bare_copy_seconds(url, csv_path)
            with psycopg.connect(url, autocommit=True) as conn:
                from exops.ingest import ensure_raw_tables

                ensure_raw_tables(conn)  # DDL is not what we time
            started = time.perf_counter()
            report = ingest(Path(tmp), url=url)
            ours = time.perf_counter() - started
            assert report.rows_loaded == args.rows, report.summary_lines()
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{dbname}" with (force)')
    print(f"{args.rows} trades rows, {size_mb:.1f} MB CSV")
    print(f"bare COPY (format csv): {bare:.2f}s  {args.rows / bare:,.0f} rows/s")
    print(f"exops ingest:           {ours:.2f}s  {args.rows / ours:,.0f} rows/s")
    print(f"ingest speed / bare COPY speed = {bare / ours:.2f}")


if __name__ == "__main__":
    main()
