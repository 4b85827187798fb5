"""The change window: recorded with every build, a warehouse of the previous design upgrades
in place, a failed build's window is not forgotten."""

from __future__ import annotations

import json
from datetime import date, timedelta

import psycopg
import pytest

from exops import dbt_nodes, transform
from exops.ingest import ingest
from exops.simulate import simulate

START = date(2026, 5, 4)
DAYS = 14
MARTS = (
    "marts.exchange_daily_kpis",
    "marts.product_daily_kpis",
    "marts.user_tier_daily",
    "marts.user_tier_transitions",
    "marts.campaign_performance",
    "marts.risk_alerts",
    "marts.acquisition_funnel",
    "staging.stg_exchange__trades",
    "intermediate.int_user_tier_changes",
)

# what the previous design's on-run-start created (macros/incremental_state.sql, removed)
LEGACY_DDL = (
    """create table intermediate.incremental_state (
        model text primary key, load_id bigint not null, rebuilt_from date,
        updated_at timestamptz not null default now())""",
    """create table intermediate.incremental_changes (
        load_id bigint not null, model text not null, first_date date not null,
        recorded_at timestamptz not null default now())""",
    "insert into intermediate.incremental_state (model, load_id) values ('__run__', 1),"
    " ('int_trades_priced', 1), ('exchange_daily_kpis', 1)",
)


def day(n: int) -> date:
    return START + timedelta(days=n - 1)


def snapshot(conn: psycopg.Connection) -> dict[str, list]:
    return {r: conn.execute(f"select * from {r} order by 1, 2, 3").fetchall() for r in MARTS}


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("window") / "landing"
    simulate(root, 150, DAYS, START, 7)
    return root


def load(landing, url: str, n: int) -> None:
    report = ingest(landing, url=url, dt_to=day(n))
    assert not [p for p in report.partitions if p.action == "failed"]


def last_build(conn: psycopg.Connection) -> tuple:
    return conn.execute(
        "select status, full_refresh, window_start, reasons from transform.builds"
        " order by build_id desc limit 1"
    ).fetchone()


def test_a_warehouse_of_the_previous_design_upgrades_in_place(landing, warehouse_url: str) -> None:
    load(landing, warehouse_url, DAYS - 2)
    assert transform.build(warehouse_url).success
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        # the previous design kept its state in these tables and had no build records
        for ddl in LEGACY_DDL:
            conn.execute(ddl)
        conn.execute("drop schema transform cascade")
    load(landing, warehouse_url, DAYS)
    upgraded = transform.build(warehouse_url)
    assert upgraded.success, upgraded.summary()
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        status, full, start, reasons = last_build(conn)
        assert (status, full, start) == ("success", True, None)
        assert reasons == ["no successful build yet"]
        assert conn.execute("select to_regclass('intermediate.incremental_state')").fetchone() == (
            None,
        )
        assert conn.execute(
            "select to_regclass('intermediate.incremental_changes')"
        ).fetchone() == (None,)
        after_upgrade = snapshot(conn)
    # the upgrade was itself a full build that ran the data tests: the rebuild runs the models
    again = transform.build(warehouse_url, full_refresh=True, threads=1, data_tests=False)
    assert again.success, again.summary()
    with psycopg.connect(warehouse_url) as conn:
        assert snapshot(conn) == after_upgrade


def test_legacy_state_alone_forces_a_full_build(landing, warehouse_url: str) -> None:
    # a warehouse that has build records and, still, the previous design's state tables
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        for ddl in LEGACY_DDL:
            conn.execute(ddl)
    result = transform.build(warehouse_url)
    assert result.success, result.summary()
    with psycopg.connect(warehouse_url) as conn:
        status, full, _, reasons = last_build(conn)
        assert (status, full) == ("success", True)
        assert reasons == ["upgrade: the warehouse holds the previous incremental design's state"]


def failed_build_from(url: str, start: date) -> None:
    """A build that failed after computing its window from ``start``."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "insert into transform.builds (status, ceiling_load_id, since_load_id, full_refresh,"
            " window_start, code_hash) select 'failed', ceiling_load_id, ceiling_load_id, false,"
            " %s, code_hash from transform.builds order by build_id desc limit 1",
            (start,),
        )


def test_a_failed_build_widens_the_next_window(landing, warehouse_url: str) -> None:
    failed_build_from(warehouse_url, day(3))
    # the DAG's node list, unusable: a build that is not full writes it again all the same
    nodes = transform.dbt_var_dir() / dbt_nodes.FILE_NAME
    nodes.write_text('{"format": 1, "models": [')
    result = transform.build(warehouse_url)
    assert result.success, result.summary()
    with psycopg.connect(warehouse_url) as conn:
        status, full, start, reasons = last_build(conn)
    assert (status, full, start) == ("success", False, day(3))
    assert any("failed build" in r for r in reasons)
    models, why = dbt_nodes.read(nodes)
    assert why is None and {m.name for m in models} >= {"exchange_daily_kpis", "risk_alerts"}
    # and once built, nothing is left to do
    result = transform.build(warehouse_url)
    assert result.success and result.models_passed == 0, result.summary()
    # a usable list is kept by a build that is not full (the dbt project is the same)
    written = nodes.stat().st_mtime_ns
    failed_build_from(warehouse_url, day(DAYS))
    result = transform.build(warehouse_url)
    assert result.success and result.models_passed > 0, result.summary()
    assert nodes.stat().st_mtime_ns == written


# views over the raw tables alone (and the time spine, the project's vars alone)
STATIC = ("stg_crm__campaigns", "stg_exchange__products", "stg_audit__partitions")


def test_a_day_build_leaves_out_what_only_the_code_changes(landing, warehouse_url: str) -> None:
    failed_build_from(warehouse_url, day(DAYS))
    result = transform.build(warehouse_url)
    assert result.success, result.summary()
    models = {uid.split(".")[-1] for uid in result.nodes if uid.startswith("model.")}
    assert not models & {*STATIC, "metricflow_time_spine"}
    # views over what the build replaces are recreated: PostgreSQL drops them with it
    assert {"int_trades_priced", "int_user_trades", "int_campaign_windows"} <= models
    # the data tests of what it left out ran, on what was loaded
    tested = {uid.split(".")[2] for uid, r in result.nodes.items() if r["status"] == "pass"}
    assert "unique_stg_crm__campaigns_campaign_id" in tested
    assert "unique_stg_exchange__products_product_id" in tested
    # a view dropped by hand: the next build builds every node, and the view is back
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute("drop view staging.stg_crm__campaigns cascade")
    failed_build_from(warehouse_url, day(DAYS))
    result = transform.build(warehouse_url)
    assert result.success, result.summary()
    assert {"model.exops.stg_crm__campaigns", "model.exops.metricflow_time_spine"} <= set(
        result.nodes
    )
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("select count(*) from staging.stg_crm__campaigns").fetchone()[0] > 0


def test_a_day_build_writes_its_run_results_and_leaves_the_manifest(
    landing, warehouse_url: str
) -> None:
    """A day's build runs dbt with --no-write-json (the manifest changes only with the code,
    which makes a build full) and writes dbt's run_results.json itself: that build's nodes."""
    target = transform.dbt_var_dir() / "target"
    manifest = target / "manifest.json"
    failed_build_from(warehouse_url, day(DAYS))
    assert transform.build(warehouse_url).success
    written = manifest.stat().st_mtime_ns
    failed_build_from(warehouse_url, day(DAYS))
    result = transform.build(warehouse_url)
    assert result.success, result.summary()
    assert manifest.stat().st_mtime_ns == written
    run_results = json.loads((target / "run_results.json").read_text())
    assert "run-results" in run_results["metadata"]["dbt_schema_version"]
    assert {r["unique_id"] for r in run_results["results"]} == set(result.nodes)
    assert {r["status"] for r in run_results["results"]} <= {"success", "pass", "no-op"}


def test_a_build_of_an_empty_window_changes_nothing(landing, warehouse_url: str) -> None:
    """dbt run on a window with nothing new (the benchmark's empty-window build): every
    incremental model has no rows to process, and every mart stays as it was."""
    assert transform.build(warehouse_url).success
    with psycopg.connect(warehouse_url) as conn:
        before = snapshot(conn)
    result = transform.build(warehouse_url, skip_when_nothing_new=False)
    assert result.success, result.summary()
    assert result.window == "nothing new since the last successful build"
    assert not result.nothing_new and result.models_passed > 40
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute(
            "select status from transform.builds where build_id = %s", (result.build_id,)
        ).fetchone() == ("success",)
        assert snapshot(conn) == before
    # and without asking, dbt does not run
    assert transform.build(warehouse_url).nothing_new


def last_dbt_log(marker: str = "Running with dbt") -> str:
    """The file log of the last dbt invocation (var/dbt/logs/dbt.log)."""
    text = (transform.dbt_var_dir() / "logs" / "dbt.log").read_text(errors="replace")
    return text[text.rindex(marker) :]


def test_dbt_file_log_level_comes_from_the_environment(
    landing, warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EXOPS_DBT_LOG_LEVEL", raising=False)
    failed_build_from(warehouse_url, day(DAYS))
    assert transform.build(warehouse_url).success
    log = last_dbt_log()
    # info: the nodes' results, not every statement
    assert "OK created sql incremental model intermediate.int_user_product_daily" in log
    assert "[debug]" not in log and "delete from" not in log
    monkeypatch.setenv("EXOPS_DBT_LOG_LEVEL", "debug")
    failed_build_from(warehouse_url, day(DAYS))
    assert transform.build(warehouse_url).success
    log = last_dbt_log()
    assert "[debug]" in log and "delete from" in log


def test_threads_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(transform.THREADS_ENV, "3")
    assert transform.dbt_threads() == 3
    monkeypatch.setenv(transform.THREADS_ENV, "none")
    with pytest.raises(transform.TransformError) as exc:
        transform.dbt_threads()
    assert str(exc.value) == "EXOPS_DBT_THREADS: must be a positive integer, got 'none'"
