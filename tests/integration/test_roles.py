"""Least privilege, end to end and tried from outside.

A non-superuser admin with CREATEROLE that owns a scratch database runs ``exops warehouse
init`` (as in production, and on PostgreSQL 15 as on 16). Then the whole daily chain, ingest
-> transform -> validate -> publish, runs with each stage connected as its own role
(EXOPS_LOADER_URL, EXOPS_TRANSFORMER_URL, EXOPS_PUBLISHER_URL; the admin's URL is made
unusable, so no stage can fall back on it). Each role is refused what it does not need,
with PostgreSQL's exact error; init twice changes nothing; dbt no longer touches roles.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from datetime import date
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from click.testing import CliRunner
from test_publish_support import mail_environment

from exops import pipeline, roles, transform, warehouse
from exops.cli import main
from exops.contract import ENTITIES
from exops.settings import dbt_project_dir
from exops.simulate import simulate

DAY0 = date(2026, 4, 6)
USERS, DAYS = 150, 10
PASSWORDS = {
    "EXOPS_LOADER_PASSWORD": "loader-test-pw",
    "EXOPS_TRANSFORMER_PASSWORD": "transformer-test-pw",
    "EXOPS_PUBLISHER_PASSWORD": "publisher-test-pw",
    "EXOPS_BI_READER_PASSWORD": "reader-test-pw",
}
SCHEMAS = ("raw", "audit", "staging", "intermediate", "marts", "transform", "quality", "publish")
# what a second init must leave exactly as it was: owners, grants, default privileges, roles
STATE_QUERIES = (
    "select nspname, pg_get_userbyid(nspowner), nspacl::text from pg_namespace"
    " where nspname = any(%(schemas)s) order by 1",
    "select n.nspname, c.relname, pg_get_userbyid(c.relowner), c.relacl::text from pg_class c"
    " join pg_namespace n on n.oid = c.relnamespace where n.nspname = any(%(schemas)s)"
    " order by 1, 2",
    "select pg_get_userbyid(defaclrole), coalesce(n.nspname, ''), defaclobjtype,"
    " defaclacl::text from pg_default_acl d left join pg_namespace n on n.oid = d.defaclnamespace"
    " order by 1, 2, 3",
    "select datacl::text from pg_database where datname = current_database()",
)
ROLE_QUERY = (
    "select rolname, rolsuper, rolcreaterole, rolcreatedb, rolcanlogin, rolpassword"
    " from pg_authid where rolname = any(%s) order by 1"
)


def _with_database(url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{dbname}"))


@pytest.fixture(scope="module")
def admin(server_url: str) -> Iterator[dict[str, str]]:
    """A scratch database owned by a CREATEROLE admin that is not a superuser."""
    tag = uuid.uuid4().hex[:10]
    name, dbname, password = f"exops_admin_{tag}", f"exops_test_{tag}", secrets.token_hex(8)
    with psycopg.connect(server_url, autocommit=True) as su:
        su.execute(f"create role {name} login createrole password '{password}'")
        su.execute(f'create database "{dbname}" owner {name}')
        if su.info.server_version >= 160000:
            # from 16 on a CREATEROLE admin manages only roles it was given ADMIN OPTION on;
            # roles an earlier admin of this shared test server created are handed over once
            for (role,) in su.execute(
                "select rolname from pg_roles where rolname = any(%s)", (list(roles.ROLES),)
            ).fetchall():
                su.execute(f"grant {role} to {name} with admin option")
    url = roles.role_url(_with_database(server_url, dbname), name, password)
    try:
        yield {"url": url, "name": name, "server": server_url, "dbname": dbname}
    finally:
        with psycopg.connect(server_url, autocommit=True) as su:
            su.execute(f'drop database if exists "{dbname}" with (force)')
            su.execute(f"drop role if exists {name}")


def _init_cli(admin_url: str, *flags: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(
        main, ["warehouse", "init", *flags], env={warehouse.ENV_URL: admin_url, **(env or {})}
    )


def _state(url: str) -> list:
    with psycopg.connect(url, autocommit=True) as conn:
        return [conn.execute(q, {"schemas": list(SCHEMAS)}).fetchall() for q in STATE_QUERIES]


def _roles_row(server_url: str) -> list:
    with psycopg.connect(server_url, autocommit=True) as su:
        return su.execute(ROLE_QUERY, (list(roles.ROLES),)).fetchall()


@pytest.fixture(scope="module")
def chain(admin: dict[str, str], tmp_path_factory) -> Iterator[dict]:
    """init by the admin, then the daily chain with every stage as its own role."""
    result = _init_cli(
        admin["url"],
        "--stage-passwords-from-env",
        "--bi-reader-password-from-env",
        env=PASSWORDS,
    )
    assert result.exit_code == 0, result.output
    for role in roles.ROLES:
        assert f"{role}: can log in; password set" in result.output
    after_init = _roles_row(admin["server"])
    base = admin["url"]
    urls = {
        stage: roles.role_url(base, role, PASSWORDS[roles.PASSWORD_ENVS[role]])
        for stage, role in roles.STAGE_ROLES.items()
    }
    urls["bi_reader"] = roles.role_url(base, "bi_reader", PASSWORDS["EXOPS_BI_READER_PASSWORD"])
    landing = tmp_path_factory.mktemp("landing")
    simulate(landing, USERS, DAYS, DAY0, 5)
    day = pipeline.landing_as_of(landing)
    mp = pytest.MonkeyPatch()
    # a stage that fell back on the admin's URL would fail to connect
    mp.setenv(warehouse.ENV_URL, "postgresql://nobody@127.0.0.1:1/not-the-admin")
    for stage, env in warehouse.STAGE_URL_ENVS.items():
        mp.setenv(env, urls[stage])
    # setting bi_reader's password is init's job when asked, never a build's
    mp.setenv("EXOPS_BI_READER_PASSWORD", "not-set-by-a-build")
    lines: list[str] = []
    recipients = {"ops": "ops@platform.test", "risk": "risk@platform.test"}
    try:
        with mail_environment(
            tmp_path_factory.mktemp("var"), recipients | {"data_eng": "de@x.test"}
        ):
            pipeline.run_direct(day, landing, lines.append)
        yield {
            "urls": urls,
            "admin": admin,
            "day": day,
            "lines": lines,
            "roles_after_init": after_init,
            "roles_after_chain": _roles_row(admin["server"]),
        }
    finally:
        mp.undo()


def _as(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def _refused(url: str, statement: str) -> str:
    with _as(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as exc:
        conn.execute(statement)
    return exc.value.diag.message_primary


def test_each_role_is_who_it_says_and_no_more(chain: dict) -> None:
    for stage, role in [*roles.STAGE_ROLES.items(), ("bi_reader", "bi_reader")]:
        with _as(chain["urls"][stage]) as conn:
            row = conn.execute(
                "select current_user, rolsuper, rolcreaterole, rolcreatedb from pg_roles"
                " where rolname = current_user"
            ).fetchone()
        assert row == (role, False, False, False)
    with _as(chain["admin"]["url"]) as conn:
        assert conn.execute(
            "select rolsuper, rolcreaterole from pg_roles where rolname = current_user"
        ).fetchone() == (False, True)


def test_the_whole_chain_ran_as_the_stage_roles(chain: dict) -> None:
    assert [line.split(":", 1)[0] for line in chain["lines"]] == [
        "ingest exchange",
        "ingest crm",
        "ingest feedback",
        "transform",
        "validate",
        "publish",
    ]
    day = chain["day"]
    with _as(chain["admin"]["url"]) as conn:
        owners = dict(
            conn.execute(
                "select schemaname || '.' || tablename, tableowner from pg_tables where"
                " (schemaname, tablename) in (('raw', 'exchange_trades'), ('audit', 'loads'),"
                " ('audit', 'quarantine'), ('marts', 'exchange_daily_kpis'),"
                " ('transform', 'builds'), ('quality', 'validation_runs'),"
                " ('publish', 'reports_sent'), ('publish', 'kpi_alerts'),"
                " ('audit', 'source_health'), ('publish', 'held_alerts'),"
                " ('publish', 'webhook_deliveries'))"
            ).fetchall()
        )
        assert conn.execute("select count(*) from raw.exchange_trades").fetchone()[0] > 0
        # the gate (as the transformer) judged the day's sources into the loader's audit schema
        assert conn.execute(
            "select count(*) from audit.source_health where day = %s", (day,)
        ).fetchone()[0] == 3 * len(ENTITIES)
        assert conn.execute(
            "select bool_and(passed) from quality.validation_runs where as_of = %s", (day,)
        ).fetchone()[0]
        assert conn.execute(
            "select emailed_at is not null from publish.reports_sent where as_of = %s", (day,)
        ).fetchone()[0]
        assert (
            conn.execute("select max(activity_date) from marts.exchange_daily_kpis").fetchone()[0]
            == day
        )
        assert (
            conn.execute(
                "select status from transform.builds order by build_id desc limit 1"
            ).fetchone()[0]
            == "success"
        )
    assert owners == {
        "raw.exchange_trades": "exops_loader",
        "audit.loads": "exops_loader",
        "audit.quarantine": "exops_loader",
        "marts.exchange_daily_kpis": "exops_transformer",
        "transform.builds": "exops_transformer",
        "quality.validation_runs": "exops_transformer",
        "publish.reports_sent": "exops_publisher",
        "publish.kpi_alerts": "exops_publisher",
        "audit.source_health": "exops_loader",
        "publish.held_alerts": "exops_publisher",
        "publish.webhook_deliveries": "exops_publisher",
    }


def test_loader_cannot_read_the_marts_nor_write_staging(chain: dict) -> None:
    loader = chain["urls"]["loader"]
    with _as(loader) as conn:
        assert conn.execute("select count(*) from audit.quarantine").fetchone()[0] >= 0
    assert _refused(loader, "select * from marts.exchange_daily_kpis") == (
        "permission denied for schema marts"
    )
    assert _refused(loader, "create table staging.sneaky (x int)") == (
        "permission denied for schema staging"
    )
    assert _refused(loader, "select * from staging.stg_exchange__trades") == (
        "permission denied for schema staging"
    )
    assert _refused(loader, "select * from quality.validation_runs") == (
        "permission denied for schema quality"
    )
    assert _refused(loader, "create schema transform2") == (
        f"permission denied for database {chain['admin']['dbname']}"
    )


def test_transformer_cannot_write_raw_nor_read_the_quarantine(chain: dict) -> None:
    transformer = chain["urls"]["transformer"]
    with _as(transformer) as conn:
        assert conn.execute("select count(*) from raw.exchange_trades").fetchone()[0] > 0
        assert conn.execute("select count(*) from audit.loads").fetchone()[0] > 0
    assert (
        _refused(
            transformer,
            "insert into raw.exchange_trades (trade_id, _load_id, _dt, _file, _line)"
            " values ('x', -1, '2026-04-06', 'x', 1)",
        )
        == "permission denied for table exchange_trades"
    )
    assert _refused(transformer, "delete from raw.exchange_trades") == (
        "permission denied for table exchange_trades"
    )
    assert _refused(transformer, "select * from audit.quarantine") == (
        "permission denied for table quarantine"
    )
    assert _refused(transformer, "truncate audit.loads") == "permission denied for table loads"
    assert _refused(transformer, "create table raw.sneaky (x int)") == (
        "permission denied for schema raw"
    )
    assert _refused(transformer, "create table audit.sneaky (x int)") == (
        "permission denied for schema audit"
    )
    assert _refused(transformer, "create schema raw2") == (
        f"permission denied for database {chain['admin']['dbname']}"
    )
    # the transformer may use schema publish only to tell its own failures
    # (publish.notifications) and check the publish deadline (publish.reports_sent)
    assert _refused(transformer, "select * from publish.kpi_alerts") == (
        "permission denied for table kpi_alerts"
    )
    assert _refused(transformer, "delete from publish.reports_sent") == (
        "permission denied for table reports_sent"
    )
    assert _refused(transformer, "create table publish.sneaky (x int)") == (
        "permission denied for schema publish"
    )
    _refused(transformer, "alter role bi_reader password 'x'")


def test_publisher_cannot_read_raw_nor_the_quarantine(chain: dict) -> None:
    publisher = chain["urls"]["publisher"]
    with _as(publisher) as conn:
        assert conn.execute("select count(*) from marts.exchange_daily_kpis").fetchone()[0] > 0
        assert conn.execute("select count(*) from quality.validation_results").fetchone()[0] > 0
    assert _refused(publisher, "select * from raw.exchange_trades") == (
        "permission denied for schema raw"
    )
    assert _refused(publisher, "select * from audit.quarantine") == (
        "permission denied for table quarantine"
    )
    assert _refused(publisher, "select * from audit.loads") == "permission denied for table loads"
    assert _refused(publisher, "select * from staging.stg_exchange__trades") == (
        "permission denied for schema staging"
    )
    assert _refused(publisher, "delete from marts.exchange_daily_kpis") == (
        "permission denied for table exchange_daily_kpis"
    )
    assert _refused(publisher, "delete from quality.validation_runs") == (
        "permission denied for table validation_runs"
    )
    assert _refused(publisher, "create table marts.sneaky (x int)") == (
        "permission denied for schema marts"
    )


def test_bi_reader_reads_the_marts_only(chain: dict) -> None:
    bi = chain["urls"]["bi_reader"]
    with _as(bi) as conn:
        assert conn.execute("select count(*) from marts.exchange_daily_kpis").fetchone()[0] == DAYS
    for relation, schema in (
        ("raw.exchange_trades", "raw"),
        ("audit.loads", "audit"),
        ("staging.stg_exchange__trades", "staging"),
        ("intermediate.int_trades_priced", "intermediate"),
        ("transform.builds", "transform"),
        ("quality.validation_runs", "quality"),
        ("publish.kpi_alerts", "publish"),
    ):
        assert _refused(bi, f"select * from {relation} limit 1") == (
            f"permission denied for schema {schema}"
        )
    assert _refused(bi, "create table marts.sneaky (x int)") == (
        "permission denied for schema marts"
    )
    assert _refused(bi, "delete from marts.exchange_daily_kpis") == (
        "permission denied for table exchange_daily_kpis"
    )


def test_init_twice_is_idempotent(chain: dict) -> None:
    url = chain["admin"]["url"]
    before = _state(url)
    roles_before = _roles_row(chain["admin"]["server"])
    # no password flag: every password stays as it is, even with the variables set
    result = _init_cli(url, env=PASSWORDS | {"EXOPS_BI_READER_PASSWORD": "changed"})
    assert result.exit_code == 0, result.output
    assert "password set" not in result.output
    for was, now in zip(before, _state(url), strict=True):
        assert sorted(set(was) ^ set(now), key=str) == []
    assert _roles_row(chain["admin"]["server"]) == roles_before
    with _as(chain["urls"]["bi_reader"]) as conn:
        assert conn.execute("select count(*) from marts.exchange_daily_kpis").fetchone()[0] == DAYS


def test_a_dbt_build_no_longer_touches_roles(chain: dict) -> None:
    project = dbt_project_dir()
    assert "on-run-end" not in (project / "dbt_project.yml").read_text()
    for path in project.rglob("*.sql"):
        if {"target", "dbt_packages"} & set(path.relative_to(project).parts):
            continue
        text = path.read_text().lower()
        for statement in ("create role", "alter role", "grant ", "revoke "):
            assert statement not in text, f"{path} runs {statement!r}"
    # the chain's build (with EXOPS_BI_READER_PASSWORD set) changed no role, nor does a full one
    assert chain["roles_after_chain"] == chain["roles_after_init"]
    result = transform.build(chain["urls"]["transformer"], full_refresh=True)
    assert result.success, result.summary()
    assert _roles_row(chain["admin"]["server"]) == chain["roles_after_init"]
    with _as(chain["urls"]["bi_reader"]) as conn:
        assert conn.execute("select count(*) from marts.exchange_daily_kpis").fetchone()[0] == DAYS


def test_a_stage_role_never_creates_schemas(admin: dict, chain: dict) -> None:
    """On a database init never ran on, a stage is told to run it (and creates nothing)."""
    dbname = f"{admin['dbname']}_bare"
    with _as(admin["server"]) as su:
        su.execute(f'create database "{dbname}" owner {admin["name"]}')
    try:
        bare = _with_database(chain["urls"]["transformer"], dbname)
        with pytest.raises(warehouse.WarehouseError, match="run `exops warehouse init`"):
            transform.build(bare)
        with _as(_with_database(admin["url"], dbname)) as conn:
            assert (
                conn.execute(
                    "select count(*) from pg_namespace where nspname = any(%s)", (list(SCHEMAS),)
                ).fetchone()[0]
                == 0
            )
    finally:
        with _as(admin["server"]) as su:
            su.execute(f'drop database "{dbname}" with (force)')


def test_init_refuses_a_password_it_was_asked_for_but_not_given(admin: dict, chain) -> None:
    roles_before = _roles_row(admin["server"])
    result = _init_cli(
        admin["url"],
        "--bi-reader-password-from-env",
        env={"EXOPS_BI_READER_PASSWORD": "", "EXOPS_BI_READER_PASSWORD_FILE": ""},
    )
    assert result.exit_code == 1
    assert (
        "bi_reader's password was asked for but EXOPS_BI_READER_PASSWORD"
        " (or EXOPS_BI_READER_PASSWORD_FILE) is not set" in result.output
    )
    assert _roles_row(admin["server"]) == roles_before


def test_init_reads_passwords_from_files(admin: dict, chain, tmp_path) -> None:
    secret_file = tmp_path / "bi_reader_password"
    secret_file.write_text("from-a-docker-secret\n")
    secret_file.chmod(0o600)
    result = _init_cli(
        admin["url"],
        "--bi-reader-password-from-env",
        env={"EXOPS_BI_READER_PASSWORD": "", "EXOPS_BI_READER_PASSWORD_FILE": str(secret_file)},
    )
    assert result.exit_code == 0, result.output
    assert "bi_reader: can log in; password set" in result.output
    with psycopg.connect(admin["server"], autocommit=True) as su:
        stored = su.execute(
            "select rolpassword from pg_authid where rolname = 'bi_reader'"
        ).fetchone()[0]
    assert stored.startswith(("SCRAM-SHA-256$", "md5")) and "from-a-docker-secret" not in stored
    # put the chain's password back for the tests that connect as bi_reader afterwards
    result = _init_cli(admin["url"], "--bi-reader-password-from-env", env={**PASSWORDS})
    assert result.exit_code == 0, result.output


@pytest.mark.server_agnostic  # an embedded server of its own: never the one at the URL
def test_the_embedded_warehouse_sets_up_the_stage_roles_on_first_use(tmp_path, monkeypatch) -> None:
    """No URL configured: the first exops command that connects as a stage initialises the
    embedded server, and each stage then connects as its role over the trusted socket,
    without a password. Before that a stage is told to run init (the warehouse module sits
    below the stages and cannot create their tables itself)."""
    from exops import bootstrap

    monkeypatch.setenv("EXOPS_VAR_DIR", str(tmp_path))
    for env in (warehouse.ENV_URL, *warehouse.STAGE_URL_ENVS.values()):
        monkeypatch.delenv(env, raising=False)
        monkeypatch.delenv(f"{env}_FILE", raising=False)
    try:
        with pytest.raises(warehouse.WarehouseError) as exc:
            warehouse.stage_url("loader")
        assert str(exc.value) == (
            f"the embedded warehouse under {tmp_path / 'pg'} has no stage roles yet: run"
            " `exops warehouse init` once (every exops command and DAG task does on first use)"
        )
        result = CliRunner().invoke(
            main, ["unload", "--source", "exchange", "--entity", "trades", "--dt", "2026-04-06"]
        )
        assert result.exit_code == 1
        assert "exchange/trades dt=2026-04-06 is not loaded: nothing to unload" in result.output
        urls = {stage: warehouse.stage_url(stage) for stage in warehouse.STAGE_URL_ENVS}
        stamp = (tmp_path / "pg" / "exops-init.json").read_text()
        for stage, url in urls.items():
            with _as(url) as conn:
                assert (
                    conn.execute("select current_user").fetchone()[0] == (roles.STAGE_ROLES[stage])
                )
        with _as(urls["loader"]) as conn:
            assert (
                conn.execute(
                    "select pg_get_userbyid(nspowner) from pg_namespace where nspname = 'raw'"
                ).fetchone()[0]
                == "exops_loader"
            )
        bootstrap.ensure_embedded()
        assert warehouse.stage_url("loader") == urls["loader"]
        assert (tmp_path / "pg" / "exops-init.json").read_text() == stamp
    finally:
        warehouse.stop_embedded()


def test_init_upgrades_a_single_url_warehouse_in_place(admin: dict, chain) -> None:
    """A warehouse the admin ran alone (earlier versions: everything the admin's, the gate's
    and publishing's tables in audit): init hands each table to its stage's role and moves
    those tables, rows and all, to their schemas."""
    from exops.ingest.audit import ensure_raw_tables
    from exops.notify import NOTIFICATIONS_DDL
    from exops.publish.store import PUBLISH_DDL
    from exops.quality.store import QUALITY_DDL

    dbname = f"{admin['dbname']}_old"
    with _as(admin["server"]) as su:
        su.execute(f'create database "{dbname}" owner {admin["name"]}')
    url = _with_database(admin["url"], dbname)
    try:
        with _as(url) as conn:
            ensure_raw_tables(conn)
            for ddl in (*QUALITY_DDL, *PUBLISH_DDL, *NOTIFICATIONS_DDL):
                conn.execute(ddl.replace("quality.", "audit.").replace("publish.", "audit."))
            conn.execute(
                "insert into audit.reports_sent (as_of, path, message_id, recipients)"
                " values ('2026-04-15', 'r.html', '<m@exops>', 'ops@x.test')"
            )
        result = _init_cli(url)
        assert result.exit_code == 0, result.output
        with _as(url) as conn:
            tables = conn.execute(
                "select schemaname, tablename, tableowner from pg_tables"
                " where tablename in ('reports_sent', 'kpi_alerts', 'validation_runs',"
                " 'dq_notifications', 'exchange_trades') order by 1, 2"
            ).fetchall()
            assert conn.execute("select as_of::text from publish.reports_sent").fetchall() == [
                ("2026-04-15",)
            ]
        assert tables == [
            ("publish", "kpi_alerts", "exops_publisher"),
            ("publish", "reports_sent", "exops_publisher"),
            ("quality", "dq_notifications", "exops_transformer"),
            ("quality", "validation_runs", "exops_transformer"),
            ("raw", "exchange_trades", "exops_loader"),
        ]
    finally:
        with _as(admin["server"]) as su:
            su.execute(f'drop database "{dbname}" with (force)')
