"""The semantic layer (`exops metrics`) against real marts, queried as bi_reader.

The session's built warehouse (2,000 simulated users x 40 days, tests/support/built_warehouse.py),
a copy of it for this module, initialised again with a bi_reader password of its own. Every metric
is queried at its mart's grain and compared with the mart cell for cell (counts exactly,
money and ratios to 1e-9 relative); rollups at coarser grains are compared with sums over
the mart; queries outside a metric's valid grains are refused; everything runs as bi_reader.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest
from click.testing import CliRunner

from exops import bootstrap, warehouse
from exops.cli import main
from exops.metrics import QueryRefused, SemanticLayer, validity_table_markdown
from exops.settings import dbt_project_dir

from built_warehouse import SCENARIO

pytestmark = pytest.mark.built_warehouse

START = SCENARIO.start
DAYS = SCENARIO.days
REL = 1e-9


@pytest.fixture(scope="module")
def built(warehouse_url: str) -> Iterator[dict]:
    """init again (with a bi_reader password from the environment) on the built copy."""
    mp = pytest.MonkeyPatch()
    mp.setenv("EXOPS_BI_READER_PASSWORD", secrets.token_urlsafe(16))
    mp.delenv(warehouse.BI_READER_URL_ENV, raising=False)
    try:
        bootstrap.init_warehouse(warehouse_url, bi_reader_password=True)
        yield {"last": SCENARIO.last}
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def layer(built: dict) -> Iterator[SemanticLayer]:
    with SemanticLayer() as semantic_layer:
        yield semantic_layer


@pytest.fixture
def db(warehouse_url: str, built: dict) -> Iterator[psycopg.Connection]:
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        yield conn


@dataclass(frozen=True)
class MartGrain:
    """A mart's grain in the semantic layer: its group-by, key columns and metric columns."""

    mart: str
    group_by: tuple[str, ...]
    keys: tuple[str, ...]
    metrics: dict[str, str]  # metric -> the mart's column (or expression)
    rows: str = "true"  # the mart's rows the metrics cover


GRAINS = (
    MartGrain(
        "exchange_daily_kpis",
        ("metric_time__day",),
        ("activity_date",),
        {
            m: m
            for m in (
                "trade_count volume_usd fees_usd traders active_users wau mau stickiness"
                " registrations new_traders deposits_usd withdrawals_usd"
            ).split()
        },
    ),
    MartGrain(
        "product_daily_kpis",
        (
            "metric_time__day",
            "product__product_id",
            "product__product_line",
            "product__lifecycle_stage",
        ),
        ("activity_date", "product_id", "product_line", "lifecycle_stage"),
        {
            f"product_{c}": c
            for c in (
                "trade_count volume_usd fees_usd traders new_traders subscribe_usd redeem_usd"
                " subscribers"
            ).split()
        },
    ),
    MartGrain(
        "product_stage_kpis",
        ("metric_time__day", "product_stage__product_id", "product_stage__lifecycle_stage"),
        ("stage_start_date", "product_id", "lifecycle_stage"),
        {
            "stage_days": "days_in_stage",
            "stage_volume_usd": "volume_usd",
            "stage_fees_usd": "fees_usd",
            "stage_new_traders": "new_traders",
            "stage_avg_daily_volume_usd": "avg_daily_volume_usd",
            "stage_avg_daily_traders": "avg_daily_traders",
            # the run's daily traders summed from the daily mart, not from the stage mart
            "stage_trader_days": "(select sum(d.traders) from marts.product_daily_kpis as d"
            " where d.product_id = m.product_id"
            " and d.activity_date between m.stage_start_date and m.stage_end_date)",
        },
    ),
    MartGrain(
        "user_tier_daily",
        ("metric_time__day", "user_tier__tier"),
        ("activity_date", "tier"),
        {
            "tier_users": "users",
            "tier_active_users": "active_users",
            "tier_volume_usd": "volume_usd",
            "tier_fees_usd": "fees_usd",
            "tier_net_deposits_usd": "net_deposits_usd",
        },
    ),
    MartGrain(
        "user_tier_transitions",
        ("metric_time__day", "tier_transition__from_tier", "tier_transition__to_tier"),
        ("activity_date", "from_tier", "to_tier"),
        {"tier_transitions": "users"},
    ),
    MartGrain(
        "retention_cohorts",
        (
            "metric_time__week",
            "retention_cohort__acquisition_channel",
            "retention_cohort__week_number",
        ),
        ("cohort_week", "acquisition_channel", "week_number"),
        {
            "retention_cohort_users": "cohort_users",
            "retained_users": "retained_users",
            "retention_rate": "retention_rate",
        },
        rows="acquisition_channel <> 'all'",
    ),
    MartGrain(
        "acquisition_funnel",
        ("metric_time__day", "funnel__acquisition_channel", "funnel__is_complete"),
        ("registration_date", "acquisition_channel", "is_complete"),
        {
            "funnel_registered_users": "registered_users",
            **{c: c for c in ("kyc_approved_users", "deposited_users", "traded_users")},
            **{c: c for c in ("kyc_rate", "deposit_rate", "trade_rate")},
            "median_hours_to_first_trade": "median_hours_to_first_trade",
        },
    ),
    MartGrain(
        "channel_performance",
        ("metric_time__month", "channel__acquisition_channel"),
        ("month", "acquisition_channel"),
        {
            "spend_usd": "spend_usd",
            "channel_registered_users": "registered_users",
            "channel_new_traders": "new_traders",
            "cac_usd": "cac_usd",
        },
    ),
    MartGrain(
        "cohort_ltv",
        (
            "metric_time__month",
            "ltv_cohort__acquisition_channel",
            "ltv_cohort__months_since_registration",
        ),
        ("cohort_month", "acquisition_channel", "months_since_registration"),
        {
            "ltv_cohort_users": "cohort_users",
            "cumulative_fees_usd": "cumulative_fees_usd",
            "ltv_usd": "ltv_usd",
        },
    ),
    MartGrain(
        "campaign_performance",
        ("metric_time__day", "campaign__campaign_id"),
        ("start_date", "campaign_id"),
        {
            "campaign_participants": "participants",
            "campaign_controls": "controls",
            **{
                c: c
                for c in (
                    "participant_volume_pre_usd participant_volume_during_usd"
                    " control_volume_pre_usd control_volume_during_usd"
                    " incremental_volume_usd incremental_fees_usd"
                ).split()
            },
            "campaign_cost_usd": "cost_usd",
            "campaign_measured_cost_usd": "case when incremental_fees_usd is not null"
            " then cost_usd end",
            "campaign_roi": "roi",
        },
    ),
    MartGrain(
        "feedback_daily",
        ("metric_time__day", "ticket__category", "ticket__channel"),
        ("created_date", "category", "channel"),
        {
            **{
                c: c
                for c in (
                    "tickets resolved_tickets resolved_within_24h csat_responses avg_csat"
                    " median_first_response_minutes"
                ).split()
            },
            "csat_score_total": "avg_csat * csat_responses",
        },
    ),
    MartGrain(
        "nps_weekly",
        ("metric_time__week",),
        ("week_start",),
        {
            "nps_responses": "responses",
            "nps_promoters": "promoters",
            "nps_passives": "passives",
            "nps_detractors": "detractors",
            "nps": "nps",
        },
        rows="product_line = 'all'",
    ),
    MartGrain(
        "nps_weekly",
        ("metric_time__week", "nps_line__product_line"),
        ("week_start", "product_line"),
        {
            "product_line_nps_responses": "responses",
            "product_line_nps_promoters": "promoters",
            "product_line_nps_passives": "passives",
            "product_line_nps_detractors": "detractors",
            "product_line_nps": "nps",
        },
        rows="product_line <> 'all'",
    ),
    MartGrain(
        "risk_alerts",
        ("metric_time__day", "risk_alert__alert_type", "risk_alert__severity"),
        ("alert_date", "alert_type", "severity"),
        {"risk_alerts": "count(*)"},
    ),
)


def _same(got, want) -> bool:
    """Counts exactly; money and ratios to 1e-9 relative; null only where the mart has null."""
    if got is None or want is None:
        return got is None and want is None
    if isinstance(want, bool) or isinstance(got, bool):
        return got == want
    if isinstance(want, int):
        return Decimal(got) == want
    return math.isclose(float(got), float(want), rel_tol=REL, abs_tol=1e-12)


def _mart_cells(db: psycopg.Connection, grain: MartGrain) -> dict[tuple, tuple]:
    keys = ", ".join(grain.keys)
    values = ", ".join(grain.metrics.values())
    group = f" group by {keys}" if "count(*)" in values else ""
    rows = db.execute(
        f"select {keys}, {values} from marts.{grain.mart} as m where {grain.rows}{group}"
    ).fetchall()
    n = len(grain.keys)
    return {tuple(r[:n]): tuple(r[n:]) for r in rows}


def _metric_cells(layer: SemanticLayer, grain: MartGrain) -> dict[tuple, tuple]:
    names = list(grain.metrics)
    result = layer.query(names, grain.group_by)
    index = {c: i for i, c in enumerate(result.columns)}
    keys = [index[g] for g in grain.group_by]
    cells = [index[m] for m in names]
    return {tuple(r[i] for i in keys): tuple(r[i] for i in cells) for r in result.rows}


def test_every_metric_has_a_mart_grain_here(layer: SemanticLayer) -> None:
    covered = [m for g in GRAINS for m in g.metrics]
    assert len(covered) == len(set(covered))
    assert set(covered) == {m.name for m in layer.metrics()}


@pytest.mark.parametrize("grain", GRAINS, ids=lambda g: f"{g.mart}:{','.join(g.group_by)}")
def test_metrics_equal_the_mart_cell_for_cell(
    layer: SemanticLayer, db: psycopg.Connection, grain: MartGrain
) -> None:
    want = _mart_cells(db, grain)
    got = _metric_cells(layer, grain)
    assert want, f"marts.{grain.mart} has no rows to compare"
    assert set(got) == set(want)
    diffs = [
        (key, metric, got[key][i], want[key][i])
        for key in want
        for i, metric in enumerate(grain.metrics)
        if not _same(got[key][i], want[key][i])
    ]
    assert not diffs, diffs[:10]


def test_rollups_equal_sums_over_the_mart(layer: SemanticLayer, db: psycopg.Connection) -> None:
    """Coarser grains: sums roll up, ratios are ratios of sums, 'all' rows are not added."""
    volume = layer.query(["volume_usd", "registrations"], ["month"])
    want = db.execute(
        "select date_trunc('month', activity_date)::date, sum(volume_usd), sum(registrations)"
        " from marts.exchange_daily_kpis group by 1 order by 1"
    ).fetchall()
    assert [tuple(r) for r in volume.rows] == [tuple(r) for r in want]

    lines = layer.query(["product_volume_usd"], ["week", "product_line"])
    want = dict(
        ((w, line), v)
        for w, line, v in db.execute(
            "select date_trunc('week', activity_date)::date, product_line, sum(volume_usd)"
            " from marts.product_daily_kpis group by 1, 2"
        ).fetchall()
    )
    assert {(r[0], r[1]): r[2] for r in lines.rows} == want

    funnel = layer.query(
        ["trade_rate", "funnel_registered_users"], ["month", "acquisition_channel"]
    )
    want = {
        (m, ch): (t / r if r else None, r)
        for m, ch, t, r in db.execute(
            "select date_trunc('month', registration_date)::date, acquisition_channel,"
            " sum(traded_users), sum(registered_users) from marts.acquisition_funnel group by 1, 2"
        ).fetchall()
    }
    assert len(funnel.rows) == len(want)
    for m, ch, rate, registered in funnel.rows:
        assert registered == want[(m, ch)][1]
        assert _same(rate, want[(m, ch)][0]), (m, ch, rate, want[(m, ch)][0])

    # the channels of retention add up to the mart's own 'all' rows
    retention = layer.query(["retained_users", "retention_cohort_users"], ["week", "week_number"])
    all_rows = {
        (w, k): (retained, cohort)
        for w, k, retained, cohort in db.execute(
            "select cohort_week, week_number, retained_users, cohort_users"
            " from marts.retention_cohorts where acquisition_channel = 'all'"
        ).fetchall()
    }
    assert all_rows
    assert {(r[0], r[1]): (r[2], r[3]) for r in retention.rows} == all_rows

    tiers = layer.query(["tier_users", "tier_active_users"], ["day"])
    exchange = dict(
        ((d,), (a,))
        for d, a in db.execute("select activity_date, active_users from marts.exchange_daily_kpis")
    )
    assert {(r[0],): (r[2],) for r in tiers.rows} == exchange


def test_where_start_and_end_filter_rows(layer: SemanticLayer, db: psycopg.Connection) -> None:
    start, end = START + timedelta(days=10), START + timedelta(days=16)
    result = layer.query(
        ["product_volume_usd"],
        ["day", "product_line"],
        where="lifecycle_stage = 'cold_start'",
        start=start,
        end=end,
    )
    want = dict(
        ((d, line), v)
        for d, line, v in db.execute(
            "select activity_date, product_line, sum(volume_usd) from marts.product_daily_kpis"
            " where lifecycle_stage = 'cold_start' and activity_date between %s and %s"
            " group by 1, 2",
            (start, end),
        ).fetchall()
    )
    assert want
    assert {(r[0], r[1]): r[2] for r in result.rows} == want


@pytest.mark.parametrize(
    ("metrics", "group_by", "message"),
    [
        (["traders"], ["month"], "traders cannot be queried by metric_time__month"),
        (["mau"], [], "mau cannot be queried without a time group-by"),
        (["stickiness", "volume_usd"], ["week"], "stickiness cannot be queried by"),
        (["product_traders"], ["day"], "product_traders must be grouped by product__product_id"),
        (["product_traders"], ["day", "product_line"], "must be grouped by product__product_id"),
        (["retention_rate"], ["week"], "must be grouped by retention_cohort__week_number"),
        (["median_first_response_minutes"], ["week", "category", "channel"], "cannot be queried"),
        (["tier_users"], ["month", "tier"], "tier_users cannot be queried by metric_time__month"),
        (["volume_usd"], ["day", "tier"], "tier is not a dimension of volume_usd"),
        (["nps"], ["month"], "nps cannot be queried by metric_time__month"),
    ],
)
def test_queries_outside_the_valid_grains_are_refused(
    layer: SemanticLayer, metrics: list[str], group_by: list[str], message: str
) -> None:
    with pytest.raises(QueryRefused) as refused:
        layer.explain(metrics, group_by)
    assert message in str(refused.value)
    assert "exops metrics list" in str(refused.value) or "--group-by" in str(refused.value)


def test_cli_refuses_with_a_clear_message(built: dict) -> None:
    result = CliRunner().invoke(
        main, ["metrics", "query", "--metrics", "traders", "--group-by", "month"]
    )
    assert result.exit_code == 1
    assert "traders cannot be queried by metric_time__month" in result.output
    assert "valid only at metric_time__day" in result.output


def test_cli_list_shows_every_metric_and_the_docs_table_is_current(layer: SemanticLayer) -> None:
    result = CliRunner().invoke(main, ["metrics", "list"])
    assert result.exit_code == 0, result.output
    for metric in layer.metrics():
        assert f"  {metric.name}  ({metric.type})" in result.output
    assert "      grains: day\n" in result.output
    readme = (dbt_project_dir() / "models" / "semantic" / "README.md").read_text()
    assert validity_table_markdown(layer.metrics()) in readme, (
        "models/semantic/README.md is out of date: paste `exops metrics list --markdown`"
    )


def test_cli_query_csv_and_explain(built: dict, db: psycopg.Connection) -> None:
    runner = CliRunner()
    args = ["metrics", "query", "--metrics", "volume_usd,traders", "--group-by", "day"]
    csv_out = runner.invoke(main, [*args, "--format", "csv", "--start", built["last"].isoformat()])
    assert csv_out.exit_code == 0, csv_out.output
    header, row = csv_out.output.strip().splitlines()
    assert header == "metric_time__day,volume_usd,traders"
    want = db.execute(
        "select volume_usd, traders from marts.exchange_daily_kpis where activity_date = %s",
        (built["last"],),
    ).fetchone()
    day, volume, traders = row.split(",")
    assert (day, Decimal(volume), int(traders)) == (built["last"].isoformat(), want[0], want[1])

    explain = runner.invoke(main, [*args, "--explain"])
    assert explain.exit_code == 0, explain.output
    assert '"marts"."exchange_daily_kpis"' in explain.output
    # the printed SQL is what a BI tool runs: as bi_reader it gives the mart's numbers
    with psycopg.connect(warehouse.bi_reader_url(), autocommit=True) as bi:
        rows = bi.execute(explain.output).fetchall()
    mart = db.execute("select activity_date, volume_usd, traders from marts.exchange_daily_kpis")
    assert len(rows) == DAYS
    assert {(r[0].date(), r[1], r[2]) for r in rows} == set(mart.fetchall())


def test_queries_run_as_bi_reader_who_cannot_write(
    layer: SemanticLayer, db: psycopg.Connection
) -> None:
    layer.query(["volume_usd"], ["day"])
    sessions = db.execute(
        "select usename from pg_stat_activity"
        " where application_name = 'exops-metrics' and datname = current_database()"
    ).fetchall()
    assert sessions == [("bi_reader",)]
    url = warehouse.bi_reader_url()
    assert url.startswith("postgresql://bi_reader:")  # the password from the environment
    with psycopg.connect(url, autocommit=True) as bi:
        assert bi.execute("select current_user").fetchone() == ("bi_reader",)
        for statement in (
            "create table marts.scratch (x int)",
            "delete from marts.exchange_daily_kpis",
            "select count(*) from intermediate.int_days",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                bi.execute(statement)
