"""The warehouse: PostgreSQL from ``EXOPS_WAREHOUSE_URL``, or an embedded one under var/.

``EXOPS_WAREHOUSE_URL`` is the admin's connection (``exops warehouse init``, ``exops
status``). Each stage connects as its own role (:mod:`exops.roles`): ``EXOPS_LOADER_URL``
(ingest, unload), ``EXOPS_TRANSFORMER_URL`` (dbt, the quality gate) and
``EXOPS_PUBLISHER_URL`` (alerts, report); a stage whose URL is unset uses
``EXOPS_WAREHOUSE_URL``, so a single-URL setup works as before. Every URL may come from a
file instead (``EXOPS_..._URL_FILE``, e.g. a Docker secret).

The embedded server (pgserver, PostgreSQL 16) listens on a Unix socket only, is started on
first use and left running so later commands reuse it; ``exops warehouse stop`` stops it.
The stages connect to it as their roles over the socket, which pgserver's ``pg_hba.conf``
trusts (no passwords), once ``exops warehouse init`` ran there: every exops command and DAG
task that connects as a stage runs it on first use (:func:`exops.bootstrap.ensure_embedded`;
this module sits below the stages and so cannot create their tables itself).
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

from exops.roles import BI_READER_ROLE, STAGE_ROLES, role_url
from exops.settings import FIELDS_BY_VARIABLE, SettingError, Settings, load_settings, var_dir

log = logging.getLogger(__name__)

ENV_URL = "EXOPS_WAREHOUSE_URL"
# the stages, each with the URL variable of its own role
STAGE_URL_ENVS = {
    "loader": "EXOPS_LOADER_URL",
    "transformer": "EXOPS_TRANSFORMER_URL",
    "publisher": "EXOPS_PUBLISHER_URL",
}


class WarehouseError(RuntimeError):
    pass


def embedded_pgdata() -> Path:
    return var_dir() / "pg"


def embedded_init_stamp() -> Path:
    """Written by ``exops warehouse init`` on the embedded server (:mod:`exops.bootstrap`)."""
    return embedded_pgdata() / "exops-init.json"


def _embedded_url() -> str:
    pgdata = embedded_pgdata()
    pgdata.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver then uses /tmp, which is fine
        warnings.simplefilter("ignore")
        import pgserver  # only needed when no warehouse is configured

        server = pgserver.get_server(pgdata, cleanup_mode=None)
    url = server.get_uri("postgres")
    _tune_embedded(pgdata, url)
    return url


def embedded_settings() -> dict[str, str]:
    """Server settings for the embedded warehouse: bulk loads and analytic queries.

    PostgreSQL's defaults (128 MB of shared buffers, a checkpoint every 1 GB of WAL) are for
    a small OLTP box: a bulk load then checkpoints far more often than checkpoint_timeout
    and writes each page again as a full-page image. Shared buffers are an eighth of RAM
    (128 MB to 2 GB); durability is untouched (fsync, synchronous_commit and full_page_writes
    stay on).
    """
    import psutil

    shared_mb = max(128, min(2048, psutil.virtual_memory().total // 2**20 // 8))
    return {
        "shared_buffers": f"{shared_mb}MB",
        "effective_cache_size": f"{shared_mb * 3}MB",
        "max_wal_size": "8GB",
        "min_wal_size": "1GB",
        "checkpoint_timeout": "15min",
        "checkpoint_completion_target": "0.9",
        "maintenance_work_mem": "512MB",
        "random_page_cost": "1.1",
        # the planner's group misestimates make JIT compile queries that then run briefly
        "jit": "off",
    }


def _tune_embedded(pgdata: Path, url: str) -> None:
    """Apply :func:`embedded_settings` once (ALTER SYSTEM), restarting if one needs it.

    A stamp file in the data directory records what was applied; a later start with the
    same settings does nothing. Concurrent first starts are serialised by a file lock.
    """
    import fcntl
    import json

    wanted = embedded_settings()
    stamp = pgdata / "exops-settings.json"

    def applied() -> bool:
        try:
            return json.loads(stamp.read_text()) == wanted
        except (OSError, ValueError):
            return False

    if applied():
        return
    with open(pgdata / "exops-settings.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if applied():
            return
        with psycopg.connect(url, autocommit=True) as conn:
            for name, value in wanted.items():
                conn.execute(f"alter system set {name} = '{value}'")
            conn.execute("select pg_reload_conf()")
            # shared_buffers is the one setting here that only a restart applies
            current_mb = conn.execute(
                "select setting::bigint * 8192 / 1048576 from pg_catalog.pg_settings"
                " where name = 'shared_buffers'"
            ).fetchone()[0]
        if f"{current_mb}MB" != wanted["shared_buffers"]:
            log.info("restarting the embedded warehouse to apply its settings")
            # restart reuses the start's options (postmaster.opts): socket only, no TCP
            _pg_ctl(pgdata, ["-w", "-m", "fast", "-l", str(pgdata / "log"), "restart"])
        stamp.write_text(json.dumps(wanted, indent=2) + "\n")


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingError as exc:
        raise WarehouseError(str(exc)) from None


def configured_url(name: str) -> str:
    """The URL variable ``name`` (or ``name_FILE``), checked to be a postgresql:// URL by the
    settings (:mod:`exops.settings`), or "" when unset."""
    return getattr(_settings(), FIELDS_BY_VARIABLE[name])


def warehouse_url() -> str:
    """The admin's PostgreSQL URL; starts the embedded server when none is configured."""
    return configured_url(ENV_URL) or _embedded_url()


def stage_url(stage: str) -> str:
    """The URL ``stage`` (loader, transformer, publisher) connects with.

    ``EXOPS_<ROLE>_URL``, else ``EXOPS_WAREHOUSE_URL``; with neither, the embedded server as
    the stage's role, once ``exops warehouse init`` ran there (every entry point runs it
    first: :func:`exops.bootstrap.ensure_embedded`).
    """
    if stage not in STAGE_URL_ENVS:
        raise ValueError(f"unknown stage {stage!r}: one of {', '.join(STAGE_URL_ENVS)}")
    url = configured_url(STAGE_URL_ENVS[stage]) or configured_url(ENV_URL)
    if url:
        return url
    return _embedded_as(STAGE_ROLES[stage])


def _embedded_as(role: str) -> str:
    """The embedded server as ``role``, once init ran there (no password: a trusted socket)."""
    admin = _embedded_url()
    if not embedded_init_stamp().exists():
        raise WarehouseError(
            f"the embedded warehouse under {embedded_pgdata()} has no stage roles yet: run"
            " `exops warehouse init` once (every exops command and DAG task does on first use)"
        )
    return role_url(admin, role)


BI_READER_URL_ENV = "EXOPS_BI_READER_URL"


def bi_reader_url() -> str:
    """The URL BI tools and ``exops metrics`` read the marts with: the role ``bi_reader``.

    ``EXOPS_BI_READER_URL``; else the server of ``EXOPS_WAREHOUSE_URL`` as ``bi_reader``, with
    ``EXOPS_BI_READER_PASSWORD`` when set (never the admin itself: BI reads marts only);
    with neither, the embedded server as ``bi_reader`` (initialised on first use by the
    command: :func:`exops.bootstrap.ensure_embedded`).
    """
    url = configured_url(BI_READER_URL_ENV)
    if url:
        return url
    admin = configured_url(ENV_URL)
    if admin:
        return role_url(admin, BI_READER_ROLE, _settings().bi_reader_password or None)
    return _embedded_as(BI_READER_ROLE)


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


def require_schemas(conn: psycopg.Connection, schemas: tuple[str, ...]) -> None:
    """Make sure a stage's own ``schemas`` exist before it creates its tables there.

    ``exops warehouse init`` creates every schema. A stage connected as an admin who may
    create schemas (a single-URL setup, ``EXOPS_WAREHOUSE_URL`` only) creates its own missing
    ones as it always did; a stage role may not, and is told to run init.
    """
    present = {
        name
        for (name,) in conn.execute(
            "select nspname from pg_catalog.pg_namespace where nspname = any(%s)",
            (list(schemas),),
        ).fetchall()
    }
    missing = [s for s in schemas if s not in present]
    if not missing:
        return
    may_create = conn.execute(
        "select has_database_privilege(current_database(), 'CREATE')"
    ).fetchone()[0]
    if not may_create:
        user = conn.execute("select current_user").fetchone()[0]
        raise WarehouseError(
            f"schema {', '.join(missing)} does not exist and {user} may not create it: run"
            " `exops warehouse init` once as the database's owner (EXOPS_WAREHOUSE_URL)"
        )
    with conn.transaction():
        # serialise concurrent first runs: CREATE SCHEMA IF NOT EXISTS can still race
        conn.execute("select pg_advisory_xact_lock(hashtext('exops.ensure_schemas'))")
        for schema in missing:
            conn.execute(f"create schema if not exists {schema}")


def move_old_tables(conn: psycopg.Connection, schema: str, tables: tuple[str, ...]) -> None:
    """Move ``tables`` an earlier version kept in schema audit to ``schema`` (their history
    matters: a mail key row that were lost would let that mail go out twice)."""
    for table in tables:
        old, new = conn.execute(
            "select to_regclass(%s), to_regclass(%s)", (f"audit.{table}", f"{schema}.{table}")
        ).fetchone()
        if old is not None and new is None:
            conn.execute(f"alter table audit.{table} set schema {schema}")


def ensure_tables(
    conn: psycopg.Connection,
    schema: str,
    ddl: tuple[str, ...],
    formerly_in_audit: tuple[str, ...] = (),
) -> None:
    """Run a stage's idempotent ``ddl`` in its own ``schema``, one process at a time.

    Each stage keeps the DDL of the tables it owns beside its code and calls this; tables of
    ``formerly_in_audit`` are moved from schema audit first (init moves them; a single-URL
    setup upgraded without init moves them here).
    """
    require_schemas(conn, (schema,))
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"exops.{schema}.tables",))
        move_old_tables(conn, schema, formerly_in_audit)
        for statement in ddl:
            conn.execute(statement)


def stop_embedded() -> bool:
    """Stop the embedded server if it runs; True when something was stopped."""
    pgdata = embedded_pgdata()
    if not (pgdata / "postmaster.pid").exists():
        return False
    _pg_ctl(pgdata, ["-w", "-m", "fast", "stop"])
    return True


def _pg_ctl(pgdata: Path, args: list[str]) -> None:
    """pgserver's pg_ctl on the embedded server (as the ``pgserver`` user when root)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs and XDG_RUNTIME_DIR, as above
        from pgserver._commands import pg_ctl

    pg_ctl(args, pgdata=pgdata, user="pgserver" if os.geteuid() == 0 else None)
