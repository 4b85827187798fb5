"""The warehouse: PostgreSQL from ``EXOPS_WAREHOUSE_URL``, or an embedded one under var/.

The embedded server (pgserver, PostgreSQL 16) listens on a Unix socket only, is started on
first use and left running so later commands reuse it; ``exops warehouse stop`` stops it.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from exops.settings import var_dir

log = logging.getLogger(__name__)

SCHEMAS = ("raw", "audit")
ENV_URL = "EXOPS_WAREHOUSE_URL"


class WarehouseError(RuntimeError):
    pass


def embedded_pgdata() -> Path:
    return var_dir() / "pg"


def _embedded_url() -> str:
    pgdata = embedded_pgdata()
    pgdata.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver then uses /tmp, which is fine
        warnings.simplefilter("ignore")
        import pgserver  # only needed when no warehouse is configured

        server = pgserver.get_server(pgdata, cleanup_mode=None)
    return server.get_uri("postgres")


def warehouse_url() -> str:
    """The PostgreSQL URL to use; starts the embedded server when none is configured."""
    url = os.environ.get(ENV_URL, "").strip()
    if url:
        scheme = urlsplit(url).scheme
        if scheme not in ("postgresql", "postgres"):
            raise WarehouseError(f"{ENV_URL} must be a postgresql:// URL, got scheme {scheme!r}")
        return url
    return _embedded_url()


def describe(url: str) -> str:
    """The URL without its password, for logs and messages."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        creds, host = netloc.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        netloc = f"{user}@{host}"
    return parts._replace(netloc=netloc).geturl()


def connect(url: str | None = None, **kwargs) -> psycopg.Connection:
    url = url or warehouse_url()
    try:
        return psycopg.connect(url, **kwargs)
    except psycopg.OperationalError as exc:
        raise WarehouseError(f"cannot connect to the warehouse {describe(url)}: {exc}") from exc


@contextmanager
def connection(url: str | None = None, **kwargs) -> Iterator[psycopg.Connection]:
    conn = connect(url, **kwargs)
    try:
        yield conn
    finally:
        conn.close()


def ensure_schemas(conn: psycopg.Connection, schemas: tuple[str, ...] = SCHEMAS) -> None:
    """Create the project's schemas if missing (idempotent, safe to run concurrently)."""
    with conn.transaction():
        # serialise concurrent first runs: CREATE SCHEMA IF NOT EXISTS can still race
        conn.execute("select pg_advisory_xact_lock(hashtext('exops.ensure_schemas'))")
        for schema in schemas:
            conn.execute(f"create schema if not exists {schema}")


def stop_embedded() -> bool:
    """Stop the embedded server if it runs; True when something was stopped."""
    pgdata = embedded_pgdata()
    if not (pgdata / "postmaster.pid").exists():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs and XDG_RUNTIME_DIR, as above
        from pgserver._commands import pg_ctl

    user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    return True
