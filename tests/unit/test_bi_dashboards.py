"""The dashboards as code (bi/dashboards/) against the marts' dbt YAML and the exposures:
the Superset bundle they become, checked without Superset (bi/exops_bi/bundle.py is plain
Python and PyYAML). test_bi_superset imports the same bundle into a real Superset."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
import yaml

from exops import bi
from exops.settings import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "bi"))
from exops_bi.bundle import BundleError, build_bundle, load_dashboard, load_marts  # noqa: E402
from exops_bi.provision import ProvisionError, sqlalchemy_uri  # noqa: E402

DASHBOARDS = PROJECT_ROOT / "bi" / "dashboards"
MARTS_DIR = PROJECT_ROOT / "dbt_project" / "models" / "marts"
URI = "postgresql+psycopg2://bi_reader@/postgres?host=/tmp/pg"
# the issue's dashboard: a chart (or more) per section, on the mart that holds it
SECTIONS = {
    "exchange_daily_kpis": "big_number",
    "product_daily_kpis": "echarts_timeseries_bar",
    "user_tier_daily": "echarts_area",
    "acquisition_funnel": "table",
    "retention_cohorts": "heatmap_v2",
    "campaign_performance": "table",
    "nps_weekly": "echarts_timeseries_line",
    "risk_alerts": "echarts_timeseries_bar",
}


@pytest.fixture(scope="module")
def bundle() -> dict[str, dict]:
    files, _ = build_bundle(DASHBOARDS, MARTS_DIR, URI)
    return {name: yaml.safe_load(text) for name, text in files.items()}


def _charts(bundle: dict[str, dict]) -> list[dict]:
    return [doc for name, doc in bundle.items() if name.startswith("charts/")]


def test_a_dataset_per_mart_with_every_column_described_as_in_dbt(bundle) -> None:
    marts = {}
    for path in MARTS_DIR.rglob("_*.yml"):
        for model in yaml.safe_load(path.read_text()).get("models") or []:
            marts[model["name"]] = model
    assert len(marts) == 14
    datasets = {d["table_name"]: d for n, d in bundle.items() if n.startswith("datasets/")}
    assert set(datasets) == set(marts)
    for name, model in marts.items():
        ds = datasets[name]
        assert ds["schema"] == "marts"
        assert ds["description"] == " ".join(model["description"].split())
        columns = {c["column_name"]: c for c in ds["columns"]}
        assert list(columns) == [c["name"] for c in model["columns"]], name
        for col in model["columns"]:
            assert col["description"].strip(), f"{name}.{col['name']} has no dbt description"
            assert columns[col["name"]]["description"] == " ".join(col["description"].split())
            assert columns[col["name"]]["is_dttm"] == (col["data_type"] == "date")


def test_the_dashboard_has_every_section_the_issue_asks_for(bundle) -> None:
    (dashboard,) = [d for n, d in bundle.items() if n.startswith("dashboards/")]
    assert dashboard["dashboard_title"] == "exops daily KPIs"
    datasets = {d["uuid"]: d["table_name"] for n, d in bundle.items() if n.startswith("datasets/")}
    on = {(datasets[c["dataset_uuid"]], c["viz_type"]) for c in _charts(bundle)}
    assert set(SECTIONS.items()) <= on
    headline = [c for c in _charts(bundle) if c["viz_type"] == "big_number"]
    assert {c["params"]["metric"] for c in headline} >= {"volume_usd", "traders", "active_users"}
    for chart in headline:
        # the as-of day and its change on the day before
        assert chart["params"]["compare_lag"] == 1
        assert chart["params"]["time_grain_sqla"] == "P1D"
    placed = {
        item["meta"]["uuid"]
        for item in dashboard["position"].values()
        if isinstance(item, dict) and item.get("type") == "CHART"
    }
    assert placed == {c["uuid"] for c in _charts(bundle)}


def test_head_counts_and_ratios_are_never_summed(bundle) -> None:
    by_name = {}
    for name, doc in bundle.items():
        if name.startswith("datasets/"):
            for metric in doc["metrics"]:
                by_name[(doc["table_name"], metric["metric_name"])] = metric["expression"]
    assert by_name[("exchange_daily_kpis", "traders")] == "max(traders)"
    assert by_name[("exchange_daily_kpis", "active_users")] == "max(active_users)"
    for key in [("acquisition_funnel", "trade_rate"), ("retention_cohorts", "retention_rate")]:
        assert "/ nullif(sum(" in by_name[key], key
    assert not [k for k, sql in by_name.items() if "avg(" in sql.lower()]


def test_ids_are_stable_so_a_reimport_updates_in_place(bundle) -> None:
    again, _ = build_bundle(DASHBOARDS, MARTS_DIR, "postgresql+psycopg2://other@host/db")
    for name, text in again.items():
        if name != "metadata.yaml":
            assert yaml.safe_load(text)["uuid"] == bundle[name]["uuid"], name
    assert len({doc.get("uuid") for doc in bundle.values()}) == len(bundle)


def test_the_connection_is_read_only_in_superset_too(bundle) -> None:
    database = bundle["databases/exops.yaml"]
    assert database["sqlalchemy_uri"] == URI
    assert not any(database[k] for k in ("allow_dml", "allow_file_upload", "allow_ctas"))
    assert bundle["metadata.yaml"]["type"] == "assets"


def test_the_exposure_registers_the_dashboard_and_the_marts_it_reads() -> None:
    marts = load_marts(MARTS_DIR)
    dashboard = load_dashboard(DASHBOARDS / "exops_daily_kpis.yaml", marts)
    exposures = yaml.safe_load((MARTS_DIR / "_exposures.yml").read_text())["exposures"]
    (exposure,) = [e for e in exposures if e.get("url", "").endswith(f"/{dashboard.slug}/")]
    assert exposure["type"] == "dashboard"
    assert exposure["url"] == (
        f"http://127.0.0.1:{bi.DEFAULT_PORT}/superset/dashboard/{bi.DASHBOARD_SLUG}/"
    )
    assert dashboard.slug == bi.DASHBOARD_SLUG
    assert sorted(exposure["depends_on"]) == sorted(f"ref('{m}')" for m in dashboard.marts_used)


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    text = (DASHBOARDS / "exops_daily_kpis.yaml").read_text()
    assert old in text
    path = tmp_path / "broken.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "groupby: [product_line]",
            "groupby: [product_lines]",
            r"charts\.volume_by_product_line\.params\.groupby: product_daily_kpis has no"
            r" column 'product_lines'",
        ),
        (
            "metrics: [nps]",
            "metrics: [nps_score]",
            r"charts\.nps_by_product_line\.params\.metrics: no metric 'nps_score' on nps_weekly;"
            r" define it under metrics\.nps_weekly",
        ),
        (
            "dataset: risk_alerts",
            "dataset: risk_alert",
            r"charts\.risk_alerts_by_type\.dataset: no mart 'risk_alert'",
        ),
        (
            "      - {chart: risk_alerts_by_type, width: 6}\n",
            "",
            r"layout must place each chart once \(twice: none, never: \['risk_alerts_by_type'\]\)",
        ),
        (
            "{chart: users_by_tier, width: 6}",
            "{chart: users_by_tier, width: 7}",
            r"layout\[2\]: widths add up to 13, not 1\.\.12",
        ),
    ],
)
def test_a_wrong_name_is_refused_saying_where(tmp_path, old, new, message) -> None:
    path = _broken(tmp_path, old, new)
    with pytest.raises(BundleError, match=message) as exc:
        load_dashboard(path, load_marts(MARTS_DIR))
    assert str(exc.value).startswith(f"{path}: ")


def test_the_warehouse_url_becomes_superset_s_psycopg2_dialect() -> None:
    assert sqlalchemy_uri("postgresql://bi_reader:pw@wh:5432/exops?sslmode=require") == (
        "postgresql+psycopg2://bi_reader:pw@wh:5432/exops?sslmode=require"
    )
    with pytest.raises(ProvisionError, match="must be a postgresql:// URL, got scheme 'mysql'"):
        sqlalchemy_uri("mysql://bi_reader@wh/exops")


def test_unset_secrets_are_generated_once_private_and_reused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EXOPS_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("EXOPS_BI_ADMIN_PASSWORD", raising=False)
    path = bi.bi_home() / "admin-password"
    first, generated = bi._kept_secret("EXOPS_BI_ADMIN_PASSWORD", path)
    assert generated and len(first) >= 24
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert bi._kept_secret("EXOPS_BI_ADMIN_PASSWORD", path) == (first, True)
    monkeypatch.setenv("EXOPS_BI_ADMIN_PASSWORD", "from-the-env")
    assert bi._kept_secret("EXOPS_BI_ADMIN_PASSWORD", path) == ("from-the-env", False)


@pytest.mark.parametrize("value", ["0", "http", "70000"])
def test_a_bad_port_is_refused(monkeypatch, value) -> None:
    monkeypatch.setenv("EXOPS_BI_PORT", value)
    with pytest.raises(
        bi.BIError, match=f"EXOPS_BI_PORT: must be a port number 1-65535, got '{value}'"
    ):
        bi.port()
