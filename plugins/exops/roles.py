"""The warehouse's schemas, least-privilege roles and every grant, declared and made in one
place: no other module creates a role or grants anything.

This module imports no stage (it sits below them all, beside :mod:`exops.warehouse`):
``exops warehouse init`` (:mod:`exops.bootstrap`) calls :func:`create_roles`,
:func:`create_schemas`, then each stage's own table DDL, then :func:`grant_access`.

Init runs once per warehouse database by an admin that owns the database and has CREATEROLE (a
superuser is not needed); rerunning it changes nothing. Each stage then connects as its own
role (:func:`exops.warehouse.stage_url`) and can do its job and nothing more:

=====================  =====================================  ==============================
role                   writes (owns)                          reads
=====================  =====================================  ==============================
``exops_loader``       raw, audit (the load audit and          -
                       quarantine)
``exops_transformer``  staging, intermediate, marts,          raw; the load audit
                       transform (build records), quality     (audit.loads, partitions,
                       (the gate's results),                  pending_partitions, unloads),
                       audit.source_health                    never audit.quarantine
``exops_publisher``    publish (alerts, reports sent)         marts, quality,
                                                              audit.partitions (as-of date),
                                                              audit.source_health
``bi_reader``          -                                      marts
=====================  =====================================  ==============================

Tables a role creates later are readable by the roles above through default privileges
(the load audit's tables are granted one by one, so that a reader of the load audit never
gets the quarantine: init creates them). No stage may create schemas or alter roles;
``exops warehouse init`` creates every schema, and dbt only builds tables and views.

On PostgreSQL 15 a CREATEROLE admin must be a member of a role to make it own a schema or to
set its default privileges; from 16 on it must be able to ``SET ROLE`` to it, and it gets
ADMIN OPTION (only) on the roles it creates. So init grants each role to the admin (no-op
for a superuser). Roles that already exist and were made by another admin (PostgreSQL 16)
need a superuser's ``grant <role> to <admin> with admin option`` first; init says so.

Passwords are set only when asked: ``stage_passwords`` sets the stage roles' from
``EXOPS_LOADER_PASSWORD``, ``EXOPS_TRANSFORMER_PASSWORD`` and ``EXOPS_PUBLISHER_PASSWORD``,
``bi_reader_password`` bi_reader's from ``EXOPS_BI_READER_PASSWORD`` (each may be a
``..._FILE`` instead). Roles are cluster-wide and grants per database.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import psycopg
from psycopg import sql

from exops.settings import FIELDS_BY_VARIABLE, SettingError, load_settings

LOADER_ROLE = "exops_loader"
TRANSFORMER_ROLE = "exops_transformer"
PUBLISHER_ROLE = "exops_publisher"
BI_READER_ROLE = "bi_reader"
ROLES = (LOADER_ROLE, TRANSFORMER_ROLE, PUBLISHER_ROLE, BI_READER_ROLE)
STAGE_ROLES = {"loader": LOADER_ROLE, "transformer": TRANSFORMER_ROLE, "publisher": PUBLISHER_ROLE}
PASSWORD_ENVS = {
    LOADER_ROLE: "EXOPS_LOADER_PASSWORD",
    TRANSFORMER_ROLE: "EXOPS_TRANSFORMER_PASSWORD",
    PUBLISHER_ROLE: "EXOPS_PUBLISHER_PASSWORD",
    BI_READER_ROLE: "EXOPS_BI_READER_PASSWORD",
}

SCHEMA_OWNERS = {
    "raw": LOADER_ROLE,
    "audit": LOADER_ROLE,
    "staging": TRANSFORMER_ROLE,
    "intermediate": TRANSFORMER_ROLE,
    "marts": TRANSFORMER_ROLE,
    "transform": TRANSFORMER_ROLE,
    "quality": TRANSFORMER_ROLE,
    "publish": PUBLISHER_ROLE,
}
LOAD_AUDIT_TABLES = ("loads", "partitions", "pending_partitions", "unloads")
# schema -> reader -> the tables it may read (None: every table, now and later)
READS: dict[str, dict[str, tuple[str, ...] | None]] = {
    "raw": {TRANSFORMER_ROLE: None},
    "audit": {
        TRANSFORMER_ROLE: LOAD_AUDIT_TABLES,
        PUBLISHER_ROLE: ("partitions", "source_health"),
    },
    "marts": {PUBLISHER_ROLE: None, BI_READER_ROLE: None},
    "quality": {PUBLISHER_ROLE: None},
    # the publish deadline is checked at the start of every stage
    "publish": {LOADER_ROLE: ("reports_sent",), TRANSFORMER_ROLE: ("reports_sent",)},
}
# schema -> writer -> the tables it may also write: any stage tells data engineers of its own
# failure, once (exops.notify)
WRITES: dict[str, dict[str, tuple[str, ...]]] = {
    "publish": {LOADER_ROLE: ("notifications",), TRANSFORMER_ROLE: ("notifications",)},
    # source health is judged by the quality gate (exops.quality.source_health)
    "audit": {TRANSFORMER_ROLE: ("source_health",)},
}
# relkind -> the ALTER ... OWNER TO statement for it
_ALTER_KIND = {
    "r": "table",
    "p": "table",
    "v": "view",
    "m": "materialized view",
    "S": "sequence",
    "f": "foreign table",
}


class RoleError(RuntimeError):
    pass


@dataclass(frozen=True)
class RoleState:
    role: str
    login: bool
    password_set: bool

    def describe(self) -> str:
        how = "can log in" if self.login else "NOLOGIN"
        return f"{self.role}: {how}" + ("; password set" if self.password_set else "")


def read_passwords(stage_passwords: bool, bi_reader_password: bool) -> dict[str, str]:
    """The passwords asked for, all read before anything changes."""
    wanted = [LOADER_ROLE, TRANSFORMER_ROLE, PUBLISHER_ROLE] if stage_passwords else []
    wanted += [BI_READER_ROLE] if bi_reader_password else []
    try:
        settings = load_settings()
    except SettingError as exc:
        raise RoleError(str(exc)) from None
    out = {}
    for role in wanted:
        env = PASSWORD_ENVS[role]
        value = getattr(settings, FIELDS_BY_VARIABLE[env])
        if not value:
            raise RoleError(f"{role}'s password was asked for but {env} (or {env}_FILE) is not set")
        out[role] = value
    return out


def _create_role(conn: psycopg.Connection, role: str) -> None:
    # two databases of one cluster may run this at once: a lost race is not an error
    conn.execute(
        sql.SQL(
            "do $$ begin"
            " if not exists (select from pg_catalog.pg_roles where rolname = {name}) then"
            " create role {role} login; end if;"
            " exception when duplicate_object or unique_violation then null; end $$"
        ).format(name=sql.Literal(role), role=sql.Identifier(role))
    )


def _manage(conn: psycopg.Connection, role: str, admin: str) -> None:
    """Let the (non-superuser) admin own objects for ``role`` and set its default privileges."""
    try:
        with conn.transaction():
            conn.execute(
                sql.SQL("grant {} to {}").format(sql.Identifier(role), sql.Identifier(admin))
            )
    except psycopg.errors.InsufficientPrivilege as exc:
        raise RoleError(
            f"{admin} may not manage the existing role {role} ({exc.diag.message_primary}):"
            f" a superuser must run `grant {role} to {admin} with admin option` once"
            " (PostgreSQL 16 and later), or run `exops warehouse init` as a superuser"
        ) from None


def _own_relations(conn: psycopg.Connection, schema: str, owner: str) -> None:
    """Make ``owner`` own every relation already in ``schema`` (an upgrade in place)."""
    rows = conn.execute(
        "select c.relname, c.relkind from pg_catalog.pg_class c"
        " join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and c.relkind = any(%s)"
        # a sequence owned by a table column follows its table
        " and not exists (select from pg_catalog.pg_depend d where d.objid = c.oid"
        "   and d.classid = 'pg_class'::regclass and d.deptype in ('a', 'i'))"
        " and pg_catalog.pg_get_userbyid(c.relowner) <> %s",
        (schema, list(_ALTER_KIND), owner),
    ).fetchall()
    for name, kind in rows:
        conn.execute(
            sql.SQL("alter {} {} owner to {}").format(
                sql.SQL(_ALTER_KIND[kind]), sql.Identifier(schema, name), sql.Identifier(owner)
            )
        )


def _grants(conn: psycopg.Connection, schema: str, owner: str, creators: list[str]) -> None:
    """Exactly the access READS gives to ``schema``: every other grant is revoked first."""
    s = sql.Identifier(schema)
    others = sql.SQL(", ").join(sql.Identifier(r) for r in ROLES if r != owner)
    conn.execute(sql.SQL("revoke all on schema {} from {}").format(s, others))
    # only where another role holds something: a blanket revoke would turn every default
    # (null) ACL explicit, and a second run would then differ from the first
    granted = conn.execute(
        "select c.relname, c.relkind = 'S' from pg_catalog.pg_class c"
        " join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and exists (select from aclexplode(c.relacl) a"
        "   join pg_catalog.pg_roles r on r.oid = a.grantee"
        "   where r.rolname = any(%s) and r.rolname <> %s)",
        (schema, list(ROLES), owner),
    ).fetchall()
    for name, sequence in granted:
        conn.execute(
            sql.SQL("revoke all on {} {} from {}").format(
                sql.SQL("sequence" if sequence else "table"), sql.Identifier(schema, name), others
            )
        )
    for creator in creators:
        conn.execute(
            sql.SQL(
                "alter default privileges for role {} in schema {} revoke all on tables from {}"
            ).format(sql.Identifier(creator), s, others)
        )
    for reader, tables in READS.get(schema, {}).items():
        r = sql.Identifier(reader)
        conn.execute(sql.SQL("grant usage on schema {} to {}").format(s, r))
        if tables is not None:
            for table in tables:
                conn.execute(
                    sql.SQL("grant select on {} to {}").format(sql.Identifier(schema, table), r)
                )
            continue
        conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(s, r))
        for creator in creators:
            conn.execute(
                sql.SQL(
                    "alter default privileges for role {} in schema {} grant select on tables to {}"
                ).format(sql.Identifier(creator), s, r)
            )
    for writer, tables in WRITES.get(schema, {}).items():
        w = sql.Identifier(writer)
        conn.execute(sql.SQL("grant usage on schema {} to {}").format(s, w))
        for table in tables:
            conn.execute(
                sql.SQL("grant select, insert, update, delete on {} to {}").format(
                    sql.Identifier(schema, table), w
                )
            )


def create_roles(
    conn: psycopg.Connection, admin: str, superuser: bool, passwords: dict[str, str]
) -> None:
    """Every role of :data:`ROLES`, able to log in, managed by ``admin``; the passwords asked
    for (:func:`read_passwords`) set."""
    for role in ROLES:
        _create_role(conn, role)
        if not superuser:
            _manage(conn, role, admin)
        conn.execute(sql.SQL("alter role {} login").format(sql.Identifier(role)))
    for role, password in passwords.items():
        conn.execute(
            sql.SQL("alter role {} password {}").format(sql.Identifier(role), sql.Literal(password))
        )


def create_schemas(conn: psycopg.Connection, database: str) -> None:
    """Every schema of :data:`SCHEMA_OWNERS`, owned by its stage's role; the roles may connect
    to ``database`` and create no schema there."""
    db = sql.Identifier(database)
    everyone = sql.SQL(", ").join(sql.Identifier(r) for r in ROLES)
    conn.execute(sql.SQL("grant connect on database {} to {}").format(db, everyone))
    # earlier versions let the stages create schemas; only init does now
    conn.execute(sql.SQL("revoke create on database {} from {}").format(db, everyone))
    for schema, owner in SCHEMA_OWNERS.items():
        s, o = sql.Identifier(schema), sql.Identifier(owner)
        conn.execute(sql.SQL("create schema if not exists {}").format(s))
        conn.execute(sql.SQL("alter schema {} owner to {}").format(s, o))


def grant_access(conn: psycopg.Connection, admin: str) -> None:
    """Each schema's relations owned by its stage's role, and exactly the access
    :data:`READS` and :data:`WRITES` give (tables granted one by one must exist by now)."""
    for schema, owner in SCHEMA_OWNERS.items():
        _own_relations(conn, schema, owner)
        # tables the admin makes there in a single-URL setup are readable too
        _grants(conn, schema, owner, sorted({owner, admin}))


def role_states(conn: psycopg.Connection, passwords: dict[str, str]) -> list[RoleState]:
    can_login = dict(
        conn.execute(
            "select rolname, rolcanlogin from pg_catalog.pg_roles where rolname = any(%s)",
            (list(ROLES),),
        ).fetchall()
    )
    return [RoleState(role, can_login[role], role in passwords) for role in ROLES]


def role_url(url: str, role: str, password: str | None = None) -> str:
    """``url`` with ``role`` (and ``password``, if any) as the user."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    creds = quote(role, safe="") + (":" + quote(password, safe="") if password else "")
    return parts._replace(netloc=f"{creds}@{host}").geturl()


__all__ = [
    "BI_READER_ROLE",
    "LOADER_ROLE",
    "PASSWORD_ENVS",
    "PUBLISHER_ROLE",
    "ROLES",
    "STAGE_ROLES",
    "TRANSFORMER_ROLE",
    "RoleError",
    "RoleState",
    "create_roles",
    "create_schemas",
    "grant_access",
    "read_passwords",
    "role_states",
    "role_url",
]
