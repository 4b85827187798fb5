"""The KPI marts end to end: simulated landing zone -> ingest -> dbt build, on real PostgreSQL.

One module-scoped build history keeps the number of dbt invocations (seconds each) small:
the simulated days are ingested in three steps with an incremental build after each (the
last step also re-delivers an earlier trades partition), the marts are snapshotted, then a
full refresh must reproduce them exactly. A missing price must fail the build (last test).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from exops import bootstrap, transform
from exops.ingest import ingest
from exops.simulate import simulate

START = date(2026, 1, 5)
DAYS = 40
USERS = 400
SEED = 20260105

MARTS = (
    "exchange_daily_kpis",
    "product_daily_kpis",
    "product_stage_kpis",
    "user_tier_daily",
    "user_tier_transitions",
    "retention_cohorts",
    "acquisition_funnel",
    "channel_performance",
    "cohort_ltv",
    "campaign_performance",
    "feedback_daily",
    "nps_weekly",
    "risk_alerts",
    "dormant_recall_targets",
)
PERSONAL_COLUMNS = {"email", "phone", "device_id", "signup_ip", "subject", "body", "comment"}


def _redeliver_without_last_trade(landing: Path, dt: date) -> str:
    """Re-deliver a trades partition with its last record dropped; returns that trade_id."""
    part = landing / "exchange" / "trades" / f"dt={dt.isoformat()}"
    (part / "_SUCCESS").unlink()
    csv = sorted(part.glob("*.csv"))[-1]
    lines = csv.read_bytes().splitlines(keepends=True)
    assert len(lines) > 2, f"{csv} has no trade to drop"
    csv.write_bytes(b"".join(lines[:-1]))
    (part / "_SUCCESS").write_bytes(b"")
    header = lines[0].decode().strip().lstrip("\ufeff").split(",")
    return lines[-1].decode().strip().split(",")[header.index("trade_id")]


def _redeliver_without_price(landing: Path, asset: str, day: date) -> date:
    """Re-deliver the asset_prices partition holding (asset, day) without that row; its dt."""
    for part in sorted((landing / "exchange" / "asset_prices").glob("dt=*")):
        for csv in sorted(part.glob("*.csv")):
            lines = csv.read_text().splitlines(keepends=True)
            kept = [x for x in lines if not x.startswith(f"{asset},{day.isoformat()},")]
            if len(kept) < len(lines):
                (part / "_SUCCESS").unlink()
                csv.write_text("".join(kept))
                (part / "_SUCCESS").write_bytes(b"")
                return date.fromisoformat(part.name[3:])
    raise AssertionError(f"no asset_prices row for {asset} on {day}")


def _snapshot(conn: psycopg.Connection, schema: str) -> None:
    conn.execute(f"drop schema if exists {schema} cascade")
    conn.execute(f"create schema {schema}")
    for mart in MARTS:
        conn.execute(f"create table {schema}.{mart} as select * from marts.{mart}")


@pytest.fixture(scope="module")
def history(warehouse_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Simulate, ingest in three steps with an incremental build after each, then full refresh.

    The warehouse is initialised first, as a deployment is (bi_reader's grants are init's).
    dbt's unit tests check the SQL on the fixed rows they give, whatever the warehouse holds:
    they run once, in the full refresh.
    """
    bootstrap.init_warehouse(warehouse_url)
    root = tmp_path_factory.mktemp("marts")
    landing = root / "landing"
    simulate(landing, USERS, DAYS, START, SEED)
    last = START + timedelta(days=DAYS - 1)
    steps = [
        (None, last - timedelta(days=6)),
        (last - timedelta(days=5), last - timedelta(days=3)),
        (last - timedelta(days=2), last),
    ]
    builds = []
    for i, (dt_from, dt_to) in enumerate(steps):
        if i == 2:
            # corrects a partition loaded two steps ago: an incremental run must go back
            dropped = _redeliver_without_last_trade(landing, last - timedelta(days=8))
            dt_from = None
        report = ingest(landing, url=warehouse_url, dt_from=dt_from, dt_to=dt_to)
        assert not [p for p in report.partitions if p.action == "failed"]
        builds.append(transform.build(warehouse_url))
        assert builds[-1].success, builds[-1].summary()
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        _snapshot(conn, "incremental_snapshot")
    full = transform.build(warehouse_url, full_refresh=True, unit_tests=True)
    assert full.success, full.summary()
    return {
        "builds": builds,
        "full": full,
        "first": START,
        "last": last,
        "dropped": dropped,
        "landing": landing,
    }


@pytest.fixture
def db(warehouse_url: str, history: dict):
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        yield conn


def test_builds_run_models_data_tests_and_unit_tests(history: dict) -> None:
    for result in [*history["builds"], history["full"]]:
        assert result.success, result.summary()
        assert result.models_failed == result.tests_failed == result.unit_tests_failed == 0
    full = history["full"]
    assert full.models_passed >= 14 + 16
    assert full.tests_passed > 100
    assert full.unit_tests_passed >= 20


def test_incremental_build_equals_full_refresh(db: psycopg.Connection) -> None:
    for mart in MARTS:
        missing = db.execute(
            f"select count(*) from (select * from incremental_snapshot.{mart}"
            f" except all select * from marts.{mart}) as diff"
        ).fetchone()[0]
        extra = db.execute(
            f"select count(*) from (select * from marts.{mart}"
            f" except all select * from incremental_snapshot.{mart}) as diff"
        ).fetchone()[0]
        rows = db.execute(f"select count(*) from marts.{mart}").fetchone()[0]
        assert (missing, extra) == (0, 0), f"{mart}: incremental differs from full refresh"
        assert rows > 0, f"{mart} is empty"


def test_redelivered_partition_replaced_its_trade(db: psycopg.Connection, history: dict) -> None:
    dt = history["last"] - timedelta(days=8)
    for relation in ("raw.exchange_trades", "intermediate.int_trades_priced"):
        found = db.execute(
            f"select count(*) from {relation} where trade_id = %s", (history["dropped"],)
        ).fetchone()[0]
        assert found == 0, relation
    loads = db.execute(
        "select loads from audit.partitions where source = 'exchange' and entity = 'trades'"
        " and partition_date = %s",
        (dt,),
    ).fetchone()[0]
    assert loads == 2


def test_every_mart_day_spine_is_dense(db: psycopg.Connection, history: dict) -> None:
    days = (history["last"] - history["first"]).days + 1
    expected = {
        "exchange_daily_kpis": days,
        "user_tier_daily": 4 * days,
        "acquisition_funnel": 7 * days,
        "feedback_daily": 8 * 4 * days,
    }
    for mart, rows in expected.items():
        assert db.execute(f"select count(*) from marts.{mart}").fetchone()[0] == rows, mart
    bounds = db.execute(
        "select min(activity_date), max(activity_date) from marts.exchange_daily_kpis"
    ).fetchone()
    assert bounds == (history["first"], history["last"])
    quiet = db.execute(
        "select count(*) from marts.exchange_daily_kpis"
        " where trade_count is null or volume_usd is null or mau is null"
    ).fetchone()[0]
    assert quiet == 0


def test_every_registered_user_is_in_exactly_one_tier_each_day(db: psycopg.Connection) -> None:
    mismatches = db.execute(
        """
        with tiers as (
            select activity_date, sum(users) as users from marts.user_tier_daily group by 1
        )
        select tiers.activity_date, tiers.users, count(users.user_id)
        from tiers
        left join staging.stg_crm__users as users on users.registered_date <= tiers.activity_date
        group by 1, 2
        having tiers.users <> count(users.user_id)
        """
    ).fetchall()
    assert mismatches == []
    assert (
        db.execute(
            "select count(distinct tier) from marts.user_tier_daily where users > 0"
        ).fetchone()[0]
        >= 3
    )


def test_product_volumes_add_up_to_exchange_volume(db: psycopg.Connection) -> None:
    mismatches = db.execute(
        """
        select exchange.activity_date
        from marts.exchange_daily_kpis as exchange
        left join (
            select activity_date, sum(volume_usd) as volume_usd, sum(trade_count) as trades
            from marts.product_daily_kpis group by 1
        ) as products using (activity_date)
        where exchange.volume_usd <> coalesce(products.volume_usd, 0)
            or exchange.trade_count <> coalesce(products.trades, 0)
        """
    ).fetchall()
    assert mismatches == []
    assert db.execute("select sum(volume_usd) from marts.exchange_daily_kpis").fetchone()[0] > 0


def test_tier_volume_is_user_volume(db: psycopg.Connection) -> None:
    # each trade counts for its maker and its taker, a self-trade once
    row = db.execute(
        """
        select
            (select sum(volume_usd) from marts.user_tier_daily),
            (select sum(volume_usd * case when is_self_trade then 1 else 2 end)
             from intermediate.int_trades_priced as trades
             join staging.stg_crm__users as makers on trades.maker_user_id = makers.user_id
             join staging.stg_crm__users as takers on trades.taker_user_id = takers.user_id
             where makers.registered_date <= trades.executed_date
               and takers.registered_date <= trades.executed_date)
        """
    ).fetchone()
    assert row[0] == row[1]


def test_retention_week_zero_is_everyone(db: psycopg.Connection, history: dict) -> None:
    rates = db.execute(
        "select distinct retention_rate from marts.retention_cohorts where week_number = 0"
    ).fetchall()
    assert rates == [(1,)]
    censored = db.execute(
        "select count(*) from marts.retention_cohorts where cohort_week + 7 * week_number + 6 > %s",
        (history["last"],),
    ).fetchone()[0]
    assert censored == 0


def test_funnel_steps_never_exceed_registrations(db: psycopg.Connection) -> None:
    bad = db.execute(
        """
        select count(*) from marts.acquisition_funnel
        where kyc_approved_users > registered_users or deposited_users > registered_users
            or traded_users > registered_users
            or (registered_users = 0 and (kyc_rate is not null or trade_rate is not null))
            or (traded_users = 0) <> (median_hours_to_first_trade is null)
            or median_hours_to_first_trade < 0 or median_hours_to_first_trade > 168
        """
    ).fetchone()[0]
    assert bad == 0
    assert db.execute("select sum(traded_users) from marts.acquisition_funnel").fetchone()[0] > 0


def test_marts_hold_no_personal_data(db: psycopg.Connection) -> None:
    columns = {
        name
        for (name,) in db.execute(
            "select column_name from information_schema.columns where table_schema = 'marts'"
        ).fetchall()
    }
    assert not columns & PERSONAL_COLUMNS
    text_columns = db.execute(
        "select table_name, column_name from information_schema.columns"
        " where table_schema = 'marts' and data_type = 'text'"
    ).fetchall()
    personal = (
        "select email as value from raw.crm_users union select phone from raw.crm_users"
        " union select device_id from raw.crm_users union select signup_ip from raw.crm_users"
    )
    for table, column in text_columns:
        leaks = db.execute(
            f"select count(*) from marts.{table} where {column} like '%@%'"
            f" or {column} in (select value from ({personal}) as p where value is not null)"
        ).fetchone()[0]
        assert leaks == 0, f"marts.{table}.{column} holds personal data"


def test_bi_reader_reads_marts_only(db: psycopg.Connection) -> None:
    db.execute("set role bi_reader")
    try:
        for mart in MARTS:
            db.execute(f"select * from marts.{mart} limit 1").fetchall()
        for relation in (
            "raw.exchange_trades",
            "staging.stg_exchange__trades",
            "intermediate.int_trades_priced",
            "audit.partitions",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                with db.transaction():
                    db.execute(f"select * from {relation} limit 1")
    finally:
        db.execute("reset role")


def test_headline_reads_the_as_of_day(warehouse_url: str, history: dict) -> None:
    head = transform.headline(warehouse_url)
    assert head["as_of_date"] == history["last"].isoformat()
    assert head["volume_usd"] > 0 and head["traders"] > 0
    assert set(head["tier_mix"]) == {"new", "active", "high_net_worth", "dormant"}


def test_missing_price_fails_the_build_naming_asset_and_day(
    db: psycopg.Connection, warehouse_url: str, history: dict
) -> None:
    day = history["last"] - timedelta(days=1)
    asset = db.execute(
        "select quote_asset from intermediate.int_trades_priced where executed_date = %s"
        " and quote_asset <> 'USD' limit 1",
        (day,),
    ).fetchone()[0]
    before = db.execute("select count(*) from marts.exchange_daily_kpis").fetchone()[0]
    # upstream re-delivers the day's prices without that asset: the build must refuse it
    dropped_from = _redeliver_without_price(history["landing"], asset, day)
    report = ingest(history["landing"], url=warehouse_url)
    assert [p.dt for p in report.partitions if p.action == "replaced"] == [dropped_from]
    result = transform.build(warehouse_url, select="+exchange_daily_kpis")
    assert not result.success
    message = "\n".join(result.failures)
    assert f"{asset} on {day.isoformat()}" in message
    assert "int_trades_priced" in message
    assert result.models_skipped > 0
    assert db.execute("select count(*) from marts.exchange_daily_kpis").fetchone()[0] == before


def test_published_marts_enforce_not_null_and_ranges(db: psycopg.Connection) -> None:
    """The published marts' not-null and range rules are constraints of their contracts,
    enforced by the table: a violating row cannot be written, by a build or by hand."""
    day = db.execute("select max(activity_date) from marts.exchange_daily_kpis").fetchone()[0]
    copy = (
        "insert into marts.exchange_daily_kpis select * from marts.exchange_daily_kpis"
        " where activity_date = %s"
    )
    for change, error in [
        ("trade_count = -1", psycopg.errors.CheckViolation),
        ("fees_usd = null", psycopg.errors.NotNullViolation),
    ]:
        with pytest.raises(error):
            with db.transaction():
                db.execute(copy, [day])
                db.execute(
                    f"update marts.exchange_daily_kpis set {change}"
                    " where ctid = (select max(ctid) from marts.exchange_daily_kpis)"
                )
    for mart, column, bad in [
        ("acquisition_funnel", "kyc_rate", "1.5"),
        ("feedback_daily", "avg_csat", "6"),
    ]:
        with pytest.raises(psycopg.errors.CheckViolation):
            with db.transaction():
                db.execute(f"update marts.{mart} set {column} = {bad}")
    nullable = db.execute(
        "select count(*) from information_schema.columns where table_schema = 'marts'"
        " and is_nullable = 'NO'"
    ).fetchone()[0]
    assert nullable >= 100


def _data_test(url: str, select: str) -> transform.TransformResult:
    """``dbt test --select <select>`` on the warehouse, summarised."""
    return transform._summarise(transform._invoke(url, ["test", "--select", select]))


def test_a_null_in_any_checked_column_fails_the_models_not_null_test(
    db: psycopg.Connection, warehouse_url: str
) -> None:
    """A model's not-null columns are checked by one data test (not_null_columns): a null in
    any of them fails it, and only that row is reported."""
    table = "intermediate.int_product_day_prices"

    def not_null_test():
        return _data_test(warehouse_url, "int_product_day_prices,test_name:not_null_columns")

    clean = not_null_test()
    assert (clean.tests_passed, clean.tests_failed) == (1, 0), clean.summary()
    for column in ("product_id", "usd_price"):
        row = db.execute(f"select ctid, {column} from {table} order by ctid limit 1").fetchone()
        db.execute(f"update {table} set {column} = null where ctid = %s", [row[0]])
        try:
            failed = not_null_test()
            assert (failed.tests_passed, failed.tests_failed) == (0, 1), failed.summary()
            assert "1 failing row" in "\n".join(failed.failures)
        finally:
            db.execute(f"update {table} set {column} = %s where {column} is null", [row[1]])
    assert not_null_test().tests_failed == 0


def test_uniqueness_held_by_an_index_is_tested_again_without_it(
    db: psycopg.Connection, warehouse_url: str
) -> None:
    """The big incremental models' keys are unique by their unique index: a duplicate cannot
    be written, and their uniqueness test then reads only the catalogue. Without the index
    (dropped by hand, say), the same test scans the table and fails on the duplicate."""
    table = "intermediate.int_user_product_daily"
    duplicate = f"insert into {table} select * from {table} limit 1"
    with pytest.raises(errors.UniqueViolation):
        db.execute(duplicate)

    def uniqueness_test():
        return _data_test(warehouse_url, "int_user_product_daily,test_name:unique_combination")

    held = uniqueness_test()
    assert (held.tests_passed, held.tests_failed) == (1, 0), held.summary()
    index = db.execute(
        "select indexrelid::regclass::text, pg_get_indexdef(indexrelid) from pg_index"
        " where indrelid = %s::regclass and indisunique",
        [table],
    ).fetchone()
    db.execute(f"drop index {index[0]}")
    db.execute(duplicate)
    try:
        scanned = uniqueness_test()
        assert (scanned.tests_passed, scanned.tests_failed) == (0, 1), scanned.summary()
        assert "1 failing row" in "\n".join(scanned.failures)
    finally:
        db.execute(f"delete from {table} where ctid = (select max(ctid) from {table})")
        db.execute(index[1])
