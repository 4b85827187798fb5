"""sqlfluff over the dbt project, its dbt templater connected to an empty local database.

Usage: ``python dbt_project/run_sqlfluff.py lint|fix [sqlfluff options] dbt_project``
(what ``make lint`` and ``make format`` run).

sqlfluff's dbt templater connects to the warehouse before it compiles the first model: it
caches the relations of the project's schemas, which ``is_incremental()`` then asks. No
macro here queries the warehouse otherwise, but the connection itself is not optional. So
this script points profiles.yml's EXOPS_PG_* variables at the database ``exops_lint`` of the
embedded PostgreSQL under var/pg, which it starts if needed (as every ``exops`` command does,
in a second or so; ``make stop`` stops it) and creates empty on first use:

- a fresh clone lints without a warehouse to set up, and never touches a configured one
  (EXOPS_WAREHOUSE_URL is ignored here);
- the database stays empty, so ``is_incremental()`` is false and every model lints as its
  full build, the same on a fresh clone as beside a built warehouse (whose incremental
  branches would also need the vars exops.transform passes).
"""

from __future__ import annotations

import os
import sys

import psycopg
from psycopg import errors
from psycopg.conninfo import make_conninfo

LINT_DATABASE = "exops_lint"


def lint_database_conninfo() -> str:
    """The embedded warehouse's database ``exops_lint``, created on first use."""
    for name in ("EXOPS_WAREHOUSE_URL", "EXOPS_WAREHOUSE_URL_FILE"):
        os.environ.pop(name, None)
    from exops import warehouse  # starts the embedded server when it is not running

    server = warehouse.warehouse_url()
    with psycopg.connect(server, autocommit=True) as admin:
        exists = admin.execute(
            "select 1 from pg_catalog.pg_database where datname = %s", (LINT_DATABASE,)
        ).fetchone()
        if not exists:
            try:
                admin.execute(f'create database "{LINT_DATABASE}"')
            except errors.DuplicateDatabase:
                pass  # a concurrent run created it
    return make_conninfo(server, dbname=LINT_DATABASE)


def main(args: list[str]) -> None:
    from exops.transform import profile_env

    os.environ.update(profile_env(lint_database_conninfo()))
    from sqlfluff.cli.commands import cli

    cli.main(args=args, prog_name="sqlfluff")


if __name__ == "__main__":
    main(sys.argv[1:])
