"""Least privilege, tried from outside: each role connects on its own and does its job, and
nothing more. The loader ingests, the transformer runs the real dbt build, bi_reader reads
the marts; each is refused everything else."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest
from click.testing import CliRunner

from exops import roles, transform
from exops.cli import main
from exops.ingest import ingest
from exops.simulate import simulate

DAY0 = date(2026, 4, 6)
PASSWORDS = {
    roles.LOADER_PASSWORD_ENV: "loader-test-pw",
    roles.TRANSFORMER_PASSWORD_ENV: "transformer-test-pw",
    roles.BI_READER_PASSWORD_ENV: "reader-test-pw",
}


@pytest.fixture(scope="module")
def built(warehouse_url: str, tmp_path_factory) -> dict[str, str]:
    """Roles first (a fresh deployment), then ingest as loader and dbt build as transformer."""
    mp = pytest.MonkeyPatch()
    for key, value in PASSWORDS.items():
        mp.setenv(key, value)
    states = roles.ensure_roles(warehouse_url)
    assert {s.role: s.login for s in states} == {
        "exops_loader": True,
        "exops_transformer": True,
        "bi_reader": True,
    }
    urls = {
        "loader": roles.role_url(warehouse_url, roles.LOADER_ROLE, roles.LOADER_PASSWORD_ENV),
        "transformer": roles.role_url(
            warehouse_url, roles.TRANSFORMER_ROLE, roles.TRANSFORMER_PASSWORD_ENV
        ),
        "bi_reader": roles.role_url(
            warehouse_url, roles.BI_READER_ROLE, roles.BI_READER_PASSWORD_ENV
        ),
        "admin": warehouse_url,
    }
    landing = tmp_path_factory.mktemp("landing")
    simulate(landing, 150, 5, DAY0, 3)
    report = ingest(landing, url=urls["loader"])
    assert not report.failed and report.rows_loaded > 0
    # setting bi_reader's password is the admin's job (ensure_roles), not the transformer's
    mp.delenv(roles.BI_READER_PASSWORD_ENV)
    result = transform.build(urls["transformer"])
    assert result.success, result.summary()
    mp.setenv(roles.BI_READER_PASSWORD_ENV, PASSWORDS[roles.BI_READER_PASSWORD_ENV])
    yield urls
    mp.undo()


def _as(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def _refused(url: str, statement: str) -> str:
    with _as(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as exc:
        conn.execute(statement)
    return str(exc.value)


def test_each_role_is_who_it_says(built: dict[str, str]) -> None:
    for name, role in (
        ("loader", "exops_loader"),
        ("transformer", "exops_transformer"),
        ("bi_reader", "bi_reader"),
    ):
        with _as(built[name]) as conn:
            user, superuser = conn.execute(
                "select current_user, rolsuper from pg_roles where rolname = current_user"
            ).fetchone()
        assert (user, superuser) == (role, False)


def test_loader_writes_raw_and_audit_but_cannot_read_the_marts(built) -> None:
    with _as(built["loader"]) as conn:
        n = conn.execute("select count(*) from raw.exchange_trades").fetchone()[0]
        conn.execute(
            "insert into raw.exchange_trades (trade_id, _load_id, _dt, _file, _line)"
            " values ('probe', -1, '2026-04-06', 'probe', 1)"
        )
        conn.execute("delete from raw.exchange_trades where trade_id = 'probe'")
        assert conn.execute("select count(*) from raw.exchange_trades").fetchone()[0] == n
    assert "marts" in _refused(built["loader"], "select * from marts.exchange_daily_kpis")
    _refused(built["loader"], "select * from staging.stg_exchange__trades")
    _refused(built["loader"], "create table marts.sneaky (x int)")


def test_transformer_reads_raw_but_cannot_write_it(built) -> None:
    with _as(built["transformer"]) as conn:
        assert conn.execute("select count(*) from raw.exchange_trades").fetchone()[0] > 0
        assert conn.execute("select count(*) from audit.loads").fetchone()[0] > 0
        owners = conn.execute(
            "select distinct schemaname, tableowner from pg_tables"
            " where schemaname in ('intermediate', 'marts')"
        ).fetchall()
    assert {o for _, o in owners} == {"exops_transformer"}
    _refused(
        built["transformer"],
        "insert into raw.exchange_trades (trade_id, _load_id, _dt, _file, _line)"
        " values ('x', -1, '2026-04-06', 'x', 1)",
    )
    _refused(built["transformer"], "delete from raw.exchange_trades")
    _refused(built["transformer"], "truncate audit.loads")
    _refused(built["transformer"], "create table raw.sneaky (x int)")


def test_bi_reader_reads_the_marts_and_nothing_else(built) -> None:
    with _as(built["bi_reader"]) as conn:
        assert conn.execute("select count(*) from marts.exchange_daily_kpis").fetchone()[0] == 5
        staging_view = conn.execute(
            "select table_name from information_schema.views where table_schema = 'staging' limit 1"
        ).fetchone()
    for relation in (
        "raw.exchange_trades",
        "audit.loads",
        "intermediate.int_trades_priced",
    ):
        _refused(built["bi_reader"], f"select * from {relation} limit 1")
    assert staging_view is None  # bi_reader cannot even see the staging views
    with _as(built["admin"]) as admin:
        view = admin.execute(
            "select table_name from information_schema.views where table_schema = 'staging'"
            " order by 1 limit 1"
        ).fetchone()[0]
    _refused(built["bi_reader"], f"select * from staging.{view} limit 1")
    _refused(built["bi_reader"], "create table marts.sneaky (x int)")


def test_ensure_roles_twice_changes_nothing(built, warehouse_url: str) -> None:
    query = (
        "select n.nspname, pg_get_userbyid(n.nspowner), n.nspacl::text from pg_namespace n"
        " where n.nspname in ('raw', 'audit', 'staging', 'intermediate', 'marts') order by 1"
    )
    with _as(warehouse_url) as conn:
        before = conn.execute(query).fetchall()
    mp = pytest.MonkeyPatch()
    for key, value in PASSWORDS.items():
        mp.setenv(key, value)
    try:
        result = CliRunner().invoke(main, ["roles"], env={"EXOPS_WAREHOUSE_URL": warehouse_url})
    finally:
        mp.undo()
    assert result.exit_code == 0, result.output
    assert "exops_loader: can log in" in result.output
    with _as(warehouse_url) as conn:
        assert conn.execute(query).fetchall() == before
    with _as(built["bi_reader"]) as conn:
        assert conn.execute("select count(*) from marts.exchange_daily_kpis").fetchone()[0] == 5
