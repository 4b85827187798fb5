"""``exops warehouse init``, composed from above the stages; and the embedded warehouse's
first use.

Why here: init needs every stage's tables to exist before it grants the other roles access
to them one by one (the load audit without its quarantine, the report and notification
tables every stage reads or writes). Each table's DDL lives with the code that owns it
(:mod:`exops.ingest.audit`, :mod:`exops.quality.store`, :mod:`exops.publish.store`,
:mod:`exops.notify`) and roles and grants live in :mod:`exops.roles`, below every stage. A
module below the stages cannot import them, so the one place that knows them all sits above
them, with the command line and the DAG tasks: this module. Imports run one way:

    settings, contract  <-  roles, mail, marts  <-  warehouse  <-  outbox, notify
      <-  simulate  <-  ingest  <-  transform  <-  quality  <-  publish
      <-  bootstrap, orchestration, pipeline, cli

(``tests/unit/test_layers.py`` holds the order and fails on an import against it.)

The embedded warehouse (no URL configured) is initialised on first use by the entry points
that connect as a stage, through :func:`ensure_embedded`: the ``exops`` commands and every
DAG task (:mod:`exops.orchestration`). :func:`exops.warehouse.stage_url` itself only checks
that init ran there and says to run it otherwise.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable

import psycopg

from exops import notify, roles, warehouse, webhook
from exops.ingest import audit
from exops.publish import provisional
from exops.publish import store as publish_store
from exops.quality import source_health
from exops.quality import store as quality_store

# each stage's own tables, in the order of the data's journey
STAGE_TABLES: tuple[Callable[[psycopg.Connection], None], ...] = (
    audit.ensure_raw_tables,
    quality_store.ensure_quality_tables,
    source_health.ensure_source_health_table,
    publish_store.ensure_publish_tables,
    provisional.ensure_held_table,
    notify.ensure_notifications_table,
    webhook.ensure_webhook_table,
)


def init_warehouse(
    url: str | None = None, *, stage_passwords: bool = False, bi_reader_password: bool = False
) -> list[roles.RoleState]:
    """Create the schemas, roles, tables and grants of the warehouse at ``url`` (the admin's).

    Idempotent: a second run leaves every owner, grant and default privilege as it was, and
    a password only changes when asked for.
    """
    passwords = roles.read_passwords(stage_passwords, bi_reader_password)
    with warehouse.connection(url or warehouse.warehouse_url(), autocommit=True) as conn:
        admin, database, superuser = conn.execute(
            "select current_user, current_database(), rolsuper from pg_catalog.pg_roles"
            " where rolname = current_user"
        ).fetchone()
        with conn.transaction():
            # one run per database at a time; roles themselves are guarded in roles.py
            conn.execute("select pg_advisory_xact_lock(hashtext('exops.roles.init'))")
            roles.create_roles(conn, admin, superuser, passwords)
            roles.create_schemas(conn, database)
            for ensure in STAGE_TABLES:
                ensure(conn)
            roles.grant_access(conn, admin)
        return roles.role_states(conn, passwords)


def _fingerprint() -> dict[str, str]:
    """What init does, by the source of the modules that define it: a change re-runs it."""
    modules = [roles, *(inspect.getmodule(ensure) for ensure in STAGE_TABLES)]
    digest = hashlib.sha256()
    for module in modules:
        digest.update(inspect.getsource(module).encode())
    return {"init": digest.hexdigest()[:16]}


def _embedded_in_use() -> bool:
    """True when some stage would connect to the embedded server (no URL configured)."""
    configured = [warehouse.ENV_URL, *warehouse.STAGE_URL_ENVS.values()]
    if warehouse.configured_url(warehouse.ENV_URL):
        return False
    return not all(warehouse.configured_url(name) for name in configured[1:])


def ensure_embedded() -> None:
    """Run init on the embedded warehouse once (per version of what init does), when no URL
    is configured; a no-op otherwise. Concurrent first uses are serialised by a file lock."""
    import fcntl

    if not _embedded_in_use():
        return
    admin_url = warehouse.warehouse_url()
    stamp = warehouse.embedded_init_stamp()
    wanted = _fingerprint()

    def done() -> bool:
        try:
            return json.loads(stamp.read_text()) == wanted
        except (OSError, ValueError):
            return False

    if done():
        return
    with open(stamp.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done():
            init_warehouse(admin_url)
            stamp.write_text(json.dumps(wanted) + "\n")
