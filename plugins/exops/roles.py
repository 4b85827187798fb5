"""Least-privilege warehouse roles, one per kind of work.

- ``exops_loader`` (ingest): owns schemas ``raw`` and ``audit``; reads nothing else.
- ``exops_transformer`` (dbt): reads ``raw`` and ``audit``, owns ``staging``,
  ``intermediate`` and ``marts``; cannot write ``raw`` or ``audit``.
- ``bi_reader`` (BI tools): reads ``marts`` only. dbt's on-run-end hook
  (``dbt_project/macros/grant_bi_reader.sql``) grants it the marts; here it is only created
  and given its login (:func:`exops.transform.ensure_bi_reader_login`).

``ensure_roles(url)`` creates them and their grants idempotently, connected as an admin
(a superuser, or the warehouse's owner with CREATEROLE). Passwords come from
``EXOPS_LOADER_PASSWORD``, ``EXOPS_TRANSFORMER_PASSWORD`` and ``EXOPS_BI_READER_PASSWORD``;
a role whose variable is unset is created NOLOGIN. Roles are cluster-wide and grants
per database, so run it once per warehouse database.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psycopg
from psycopg import sql

from exops import warehouse
from exops.transform import BI_READER_PASSWORD_ENV, BI_READER_ROLE, ensure_bi_reader_login

LOADER_ROLE = "exops_loader"
TRANSFORMER_ROLE = "exops_transformer"
LOADER_PASSWORD_ENV = "EXOPS_LOADER_PASSWORD"
TRANSFORMER_PASSWORD_ENV = "EXOPS_TRANSFORMER_PASSWORD"

LOADER_SCHEMAS = ("raw", "audit")
TRANSFORMER_SCHEMAS = ("staging", "intermediate", "marts")
ROLES = (LOADER_ROLE, TRANSFORMER_ROLE, BI_READER_ROLE)

# relkind -> the ALTER ... OWNER TO statement for it
_ALTER_KIND = {
    "r": "table",
    "p": "table",
    "v": "view",
    "m": "materialized view",
    "S": "sequence",
    "f": "foreign table",
}


@dataclass(frozen=True)
class RoleState:
    role: str
    login: bool

    def describe(self) -> str:
        how = "can log in" if self.login else "NOLOGIN (set its password variable to log in)"
        return f"{self.role}: {how}"


def _create_role(conn: psycopg.Connection, role: str) -> None:
    # two databases of one cluster may run this at once: a lost race is not an error
    conn.execute(
        sql.SQL(
            "do $$ begin"
            " if not exists (select from pg_catalog.pg_roles where rolname = {name}) then"
            " create role {role} nologin; end if;"
            " exception when duplicate_object or unique_violation then null; end $$"
        ).format(name=sql.Literal(role), role=sql.Identifier(role))
    )


def _set_login(conn: psycopg.Connection, role: str, env: str) -> None:
    # without a password the role keeps what it has (NOLOGIN when just created)
    password = os.environ.get(env, "")
    if not password:
        return
    conn.execute(
        sql.SQL("alter role {} with login password {}").format(
            sql.Identifier(role), sql.Literal(password)
        )
    )


def _own_schema(conn: psycopg.Connection, schema: str, owner: str) -> None:
    """Make ``owner`` own ``schema`` and every relation already in it."""
    conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
    conn.execute(
        sql.SQL("alter schema {} owner to {}").format(sql.Identifier(schema), sql.Identifier(owner))
    )
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
                sql.SQL(_ALTER_KIND[kind]),
                sql.Identifier(schema, name),
                sql.Identifier(owner),
            )
        )


def _grant_read(conn: psycopg.Connection, schema: str, reader: str, creators: list[str]) -> None:
    """``reader`` may read every table of ``schema``, now and those ``creators`` make later."""
    s, r = sql.Identifier(schema), sql.Identifier(reader)
    conn.execute(sql.SQL("grant usage on schema {} to {}").format(s, r))
    conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(s, r))
    for creator in creators:
        conn.execute(
            sql.SQL(
                "alter default privileges for role {} in schema {} grant select on tables to {}"
            ).format(sql.Identifier(creator), s, r)
        )


def ensure_roles(url: str | None = None) -> list[RoleState]:
    """Create the loader, transformer and BI roles and their grants (idempotent)."""
    with warehouse.connection(url, autocommit=True) as conn:
        admin = conn.execute("select current_user").fetchone()[0]
        database = conn.execute("select current_database()").fetchone()[0]
        with conn.transaction():
            # one run per database at a time; roles themselves are guarded in _create_role
            conn.execute("select pg_advisory_xact_lock(hashtext('exops.roles.ensure_roles'))")
            for role in (LOADER_ROLE, TRANSFORMER_ROLE, BI_READER_ROLE):
                _create_role(conn, role)
            _set_login(conn, LOADER_ROLE, LOADER_PASSWORD_ENV)
            _set_login(conn, TRANSFORMER_ROLE, TRANSFORMER_PASSWORD_ENV)
            db = sql.Identifier(database)
            for role in (LOADER_ROLE, TRANSFORMER_ROLE, BI_READER_ROLE):
                conn.execute(
                    sql.SQL("grant connect on database {} to {}").format(db, sql.Identifier(role))
                )
            # `create schema if not exists` needs CREATE on the database even when it exists
            for role in (LOADER_ROLE, TRANSFORMER_ROLE):
                conn.execute(
                    sql.SQL("grant create on database {} to {}").format(db, sql.Identifier(role))
                )
            for schema in LOADER_SCHEMAS:
                _own_schema(conn, schema, LOADER_ROLE)
                # tables the admin (e.g. the pipeline's own role) creates there later too
                _grant_read(conn, schema, TRANSFORMER_ROLE, [LOADER_ROLE, admin])
            for schema in TRANSFORMER_SCHEMAS:
                _own_schema(conn, schema, TRANSFORMER_ROLE)
        ensure_bi_reader_login(url)
        can_login = dict(
            conn.execute(
                "select rolname, rolcanlogin from pg_catalog.pg_roles where rolname = any(%s)",
                (list(ROLES),),
            ).fetchall()
        )
    return [RoleState(role, can_login[role]) for role in ROLES]


def role_url(url: str, role: str, password_env: str | None = None) -> str:
    """``url`` with ``role`` (and its password from ``password_env``) as the user."""
    from urllib.parse import quote, urlsplit

    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    password = os.environ.get(password_env, "") if password_env else ""
    creds = quote(role, safe="") + (":" + quote(password, safe="") if password else "")
    return parts._replace(netloc=f"{creds}@{host}").geturl()


__all__ = [
    "BI_READER_PASSWORD_ENV",
    "BI_READER_ROLE",
    "LOADER_ROLE",
    "TRANSFORMER_ROLE",
    "RoleState",
    "ensure_roles",
    "role_url",
]
