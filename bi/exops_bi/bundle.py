"""Dashboards as code: ``bi/dashboards/*.yaml`` and the marts' dbt YAML -> Superset's import bundle.

The bundle is what Superset's own export writes (``metadata.yaml``, ``databases/``,
``datasets/``, ``charts/``, ``dashboards/``, version 1.0.0), built here from:

- the marts' dbt YAML (``dbt_project/models/marts/**/_*.yml``): a dataset per mart, its
  description and every column's description and type, as the dbt docs show them;
- a dashboard file: saved metrics per mart, charts (Superset form data) and the layout.

Every id is a UUID derived from a name (the database, a mart, a chart's key, a dashboard's
slug), so importing the bundle again with overwrite updates the same objects: one dashboard,
however often ``make bi`` runs. Pure Python and PyYAML: the exops tests check it without
Superset, and Superset's environment runs it to import.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

# the namespace of every exops object in Superset (uuid5 of a name under it)
NAMESPACE = uuid.UUID("6f0c1d8e-3b52-5a7e-9c41-0e5b7a2d9f13")
DATABASE_NAME = "exops marts (bi_reader)"
MARTS_SCHEMA = "marts"
VERSION = "1.0.0"
GRID_COLUMNS = 12
TEMPORAL_TYPES = ("date", "timestamp", "timestamptz", "timestamp with time zone")
# form-data keys whose values name columns of the chart's dataset
COLUMN_KEYS = ("x_axis", "groupby", "all_columns", "columns", "groupbyRows", "groupbyColumns")
# form-data keys whose values name saved metrics
METRIC_KEYS = ("metric", "metrics", "timeseries_limit_metric", "secondary_metric")


class BundleError(ValueError):
    """A dashboard file or a mart's YAML that cannot become a bundle; says where and why."""


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str
    description: str

    @property
    def is_temporal(self) -> bool:
        return self.data_type.lower().startswith(TEMPORAL_TYPES)


@dataclass(frozen=True)
class Mart:
    name: str
    description: str
    columns: tuple[Column, ...]
    source: Path

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass
class Dashboard:
    slug: str
    title: str
    description: str
    metrics: dict[str, dict[str, dict[str, Any]]]
    charts: dict[str, dict[str, Any]]
    layout: list[dict[str, Any]]
    source: Path
    marts_used: set[str] = field(default_factory=set)


def stable_uuid(kind: str, name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{name}"))


def load_marts(marts_dir: Path) -> dict[str, Mart]:
    """Every model under ``marts_dir`` with its columns, from the dbt YAML beside it."""
    marts: dict[str, Mart] = {}
    for path in sorted(marts_dir.rglob("*.yml")):
        doc = yaml.safe_load(path.read_text()) or {}
        for model in doc.get("models") or []:
            name = model["name"]
            columns = []
            for col in model.get("columns") or []:
                if not col.get("data_type"):
                    raise BundleError(
                        f"{path}: column {name}.{col['name']} has no data_type: published"
                        " marts carry an enforced contract, add it there"
                    )
                columns.append(
                    Column(col["name"], str(col["data_type"]), _text(col.get("description")))
                )
            marts[name] = Mart(name, _text(model.get("description")), tuple(columns), path)
    if not marts:
        raise BundleError(f"{marts_dir}: no dbt models found (expected the marts' YAML files)")
    return marts


def _text(value: Any) -> str:
    return " ".join(str(value or "").split())


def load_dashboard(path: Path, marts: dict[str, Mart]) -> Dashboard:
    """A dashboard file, checked against the marts: every name it uses must exist."""
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise BundleError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise BundleError(f"{path}: expected a mapping with dashboard, metrics, charts, layout")
    missing = [k for k in ("dashboard", "metrics", "charts", "layout") if not doc.get(k)]
    if missing:
        raise BundleError(f"{path}: missing {', '.join(missing)}")
    head = doc["dashboard"]
    for key in ("slug", "title"):
        if not head.get(key):
            raise BundleError(f"{path}: dashboard.{key} is required")
    metrics = {mart: dict(defs or {}) for mart, defs in doc["metrics"].items()}
    for mart, defs in metrics.items():
        if mart not in marts:
            raise BundleError(f"{path}: metrics.{mart}: no such mart ({_known(marts)})")
        for name, spec in defs.items():
            if not isinstance(spec, dict) or not spec.get("sql"):
                raise BundleError(f"{path}: metrics.{mart}.{name}: needs `sql`")
    dashboard = Dashboard(
        slug=head["slug"],
        title=head["title"],
        description=_text(head.get("description")),
        metrics=metrics,
        charts=doc["charts"],
        layout=doc["layout"],
        source=path,
    )
    for key, chart in dashboard.charts.items():
        _check_chart(dashboard, key, chart, marts)
    _check_layout(dashboard)
    return dashboard


def _known(marts: dict[str, Mart]) -> str:
    return "marts: " + ", ".join(sorted(marts))


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)]


def _check_chart(dashboard: Dashboard, key: str, chart: dict, marts: dict[str, Mart]) -> None:
    where = f"{dashboard.source}: charts.{key}"
    for required in ("title", "viz_type", "dataset", "params"):
        if not chart.get(required):
            raise BundleError(f"{where}: `{required}` is required")
    mart = marts.get(chart["dataset"])
    if mart is None:
        raise BundleError(f"{where}.dataset: no mart {chart['dataset']!r} ({_known(marts)})")
    dashboard.marts_used.add(mart.name)
    params = chart["params"]
    saved = dashboard.metrics.get(mart.name, {})
    for k in METRIC_KEYS:
        for name in _names(params.get(k)):
            if name not in saved:
                raise BundleError(
                    f"{where}.params.{k}: no metric {name!r} on {mart.name}; define it under"
                    f" metrics.{mart.name} (defined: {', '.join(sorted(saved)) or 'none'})"
                )
    for k in COLUMN_KEYS:
        for name in _names(params.get(k)):
            if mart.column(name) is None:
                raise BundleError(
                    f"{where}.params.{k}: {mart.name} has no column {name!r}"
                    f" ({mart.source} lists its columns)"
                )


def _check_layout(dashboard: Dashboard) -> None:
    placed: list[str] = []
    for i, row in enumerate(dashboard.layout):
        where = f"{dashboard.source}: layout[{i}]"
        if not isinstance(row.get("height"), int) or row["height"] <= 0:
            raise BundleError(f"{where}.height: a positive number of grid units is required")
        if "markdown" in row:
            continue
        width = 0
        for item in row.get("charts") or []:
            if item.get("chart") not in dashboard.charts:
                raise BundleError(f"{where}: unknown chart {item.get('chart')!r}")
            placed.append(item["chart"])
            width += int(item.get("width", 0))
        if not 0 < width <= GRID_COLUMNS:
            raise BundleError(f"{where}: widths add up to {width}, not 1..{GRID_COLUMNS}")
    twice = sorted({c for c in placed if placed.count(c) > 1})
    unplaced = sorted(set(dashboard.charts) - set(placed))
    if twice or unplaced:
        raise BundleError(
            f"{dashboard.source}: layout must place each chart once"
            f" (twice: {twice or 'none'}, never: {unplaced or 'none'})"
        )


def database_config(sqlalchemy_uri: str) -> dict[str, Any]:
    """The warehouse as bi_reader: read-only in Superset too (no DML, uploads, CTAS)."""
    return {
        "database_name": DATABASE_NAME,
        "sqlalchemy_uri": sqlalchemy_uri,
        "cache_timeout": None,
        "expose_in_sqllab": True,
        "allow_run_async": False,
        "allow_ctas": False,
        "allow_cvas": False,
        "allow_dml": False,
        "allow_file_upload": False,
        "extra": {
            "allows_virtual_table_explore": True,
            "metadata_params": {},
            "engine_params": {},
            "schemas_allowed_for_file_upload": [],
        },
        "uuid": stable_uuid("database", "exops"),
        "version": VERSION,
    }


def dataset_config(mart: Mart, metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
    temporal = [c.name for c in mart.columns if c.is_temporal]
    return {
        "table_name": mart.name,
        "schema": MARTS_SCHEMA,
        "description": mart.description,
        "main_dttm_col": temporal[0] if temporal else None,
        "default_endpoint": None,
        "offset": 0,
        "cache_timeout": None,
        "sql": None,
        "params": None,
        "template_params": None,
        "filter_select_enabled": True,
        "fetch_values_predicate": None,
        "extra": None,
        "normalize_columns": False,
        "always_filter_main_dttm": False,
        "is_managed_externally": True,
        "external_url": None,
        "uuid": stable_uuid("dataset", mart.name),
        "database_uuid": stable_uuid("database", "exops"),
        "version": VERSION,
        "columns": [
            {
                "column_name": c.name,
                "verbose_name": None,
                "is_dttm": c.is_temporal,
                "is_active": True,
                "type": c.data_type.upper(),
                "advanced_data_type": None,
                "groupby": True,
                "filterable": True,
                "expression": None,
                "description": c.description or None,
                "python_date_format": None,
                "extra": None,
            }
            for c in mart.columns
        ],
        "metrics": [
            {
                "metric_name": "count",
                "verbose_name": "Rows",
                "metric_type": "count",
                "expression": "count(*)",
                "description": "Rows of the mart (its grain is in the dataset description).",
                "d3format": ",d",
                "currency": None,
                "extra": None,
                "warning_text": None,
            },
            *(
                {
                    "metric_name": name,
                    "verbose_name": spec.get("label") or name,
                    "metric_type": None,
                    "expression": spec["sql"],
                    "description": _text(spec.get("description")) or None,
                    "d3format": spec.get("format"),
                    "currency": None,
                    "extra": None,
                    "warning_text": None,
                }
                for name, spec in metrics.items()
                if name != "count"
            ),
        ],
    }


def _adhoc_filters(key: str, chart: dict, mart: Mart) -> list[dict[str, Any]]:
    params = chart["params"]
    filters = []
    x_axis = mart.column(params["x_axis"]) if isinstance(params.get("x_axis"), str) else None
    if x_axis is not None and x_axis.is_temporal:
        filters.append(
            {
                "clause": "WHERE",
                "expressionType": "SIMPLE",
                "operator": "TEMPORAL_RANGE",
                "subject": x_axis.name,
                "comparator": params.get("time_range", "No filter"),
                "filterOptionName": f"filter_{key}_time",
                "isExtra": False,
                "isNew": False,
            }
        )
    for i, condition in enumerate(chart.get("filters") or []):
        filters.append(
            {
                "clause": "WHERE",
                "expressionType": "SQL",
                "sqlExpression": condition,
                "subject": None,
                "operator": None,
                "comparator": None,
                "filterOptionName": f"filter_{key}_{i}",
                "isExtra": False,
                "isNew": False,
            }
        )
    return filters


def chart_config(key: str, chart: dict, mart: Mart) -> dict[str, Any]:
    params = dict(chart["params"])
    params.setdefault("time_range", "No filter")
    params["adhoc_filters"] = _adhoc_filters(key, chart, mart)
    params["viz_type"] = chart["viz_type"]
    params.setdefault("extra_form_data", {})
    params.setdefault("annotation_layers", [])
    return {
        "slice_name": chart["title"],
        "description": _text(chart.get("description")) or None,
        "certified_by": None,
        "certification_details": None,
        "viz_type": chart["viz_type"],
        "params": params,
        "query_context": None,
        "cache_timeout": None,
        "is_managed_externally": True,
        "external_url": None,
        "uuid": stable_uuid("chart", key),
        "dataset_uuid": stable_uuid("dataset", mart.name),
        "version": VERSION,
    }


def dashboard_config(dashboard: Dashboard) -> dict[str, Any]:
    position: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"id": "ROOT_ID", "type": "ROOT", "children": ["GRID_ID"]},
        "GRID_ID": {"id": "GRID_ID", "type": "GRID", "children": [], "parents": ["ROOT_ID"]},
        "HEADER_ID": {"id": "HEADER_ID", "type": "HEADER", "meta": {"text": dashboard.title}},
    }
    for i, row in enumerate(dashboard.layout):
        row_id = f"ROW-{i + 1}"
        parents = ["ROOT_ID", "GRID_ID", row_id]
        children = []
        if "markdown" in row:
            md_id = f"MARKDOWN-{i + 1}"
            position[md_id] = {
                "id": md_id,
                "type": "MARKDOWN",
                "children": [],
                "parents": parents,
                "meta": {"code": row["markdown"], "width": GRID_COLUMNS, "height": row["height"]},
            }
            children.append(md_id)
        for item in row.get("charts") or []:
            key = item["chart"]
            chart_id = f"CHART-{key}"
            position[chart_id] = {
                "id": chart_id,
                "type": "CHART",
                "children": [],
                "parents": parents,
                "meta": {
                    "chartId": 0,
                    "uuid": stable_uuid("chart", key),
                    "sliceName": dashboard.charts[key]["title"],
                    "width": int(item["width"]),
                    "height": row["height"],
                },
            }
            children.append(chart_id)
        position[row_id] = {
            "id": row_id,
            "type": "ROW",
            "children": children,
            "parents": ["ROOT_ID", "GRID_ID"],
            "meta": {"background": "BACKGROUND_TRANSPARENT"},
        }
        position["GRID_ID"]["children"].append(row_id)
    return {
        "dashboard_title": dashboard.title,
        "description": dashboard.description or None,
        "css": "",
        "slug": dashboard.slug,
        "certified_by": "",
        "certification_details": "",
        "published": True,
        "is_managed_externally": True,
        "external_url": None,
        "uuid": stable_uuid("dashboard", dashboard.slug),
        "position": position,
        "metadata": {
            "color_scheme": "supersetColors",
            "cross_filters_enabled": False,
            "native_filter_configuration": [],
            "refresh_frequency": 0,
            "timed_refresh_immune_slices": [],
            "expanded_slices": {},
            "label_colors": {},
            "shared_label_colors": [],
            "color_scheme_domain": [],
            "default_filters": "{}",
        },
        "version": VERSION,
    }


def build_bundle(
    dashboards_dir: Path, marts_dir: Path, sqlalchemy_uri: str
) -> tuple[dict[str, str], list[Dashboard]]:
    """File name -> YAML text of the whole bundle, and the dashboards it holds.

    Every mart gets a dataset (with the saved metrics any dashboard defines for it); every
    dashboard file its charts and layout.
    """
    marts = load_marts(marts_dir)
    files = sorted(dashboards_dir.glob("*.yaml"))
    if not files:
        raise BundleError(f"{dashboards_dir}: no dashboard files (*.yaml)")
    dashboards = [load_dashboard(path, marts) for path in files]
    slugs = [d.slug for d in dashboards]
    if len(set(slugs)) != len(slugs):
        raise BundleError(f"{dashboards_dir}: two dashboard files share a slug: {slugs}")
    metrics: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in marts}
    for d in dashboards:
        for mart, defs in d.metrics.items():
            for name, spec in defs.items():
                if name in metrics[mart] and metrics[mart][name]["sql"] != spec["sql"]:
                    raise BundleError(
                        f"{d.source}: metrics.{mart}.{name} is defined differently elsewhere"
                    )
                metrics[mart][name] = spec
    bundle = {
        "metadata.yaml": {
            "version": VERSION,
            "type": "assets",
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "databases/exops.yaml": database_config(sqlalchemy_uri),
    }
    for name, mart in marts.items():
        bundle[f"datasets/exops/{name}.yaml"] = dataset_config(mart, metrics[name])
    for d in dashboards:
        for key, chart in d.charts.items():
            bundle[f"charts/{key}.yaml"] = chart_config(key, chart, marts[chart["dataset"]])
        bundle[f"dashboards/{d.slug}.yaml"] = dashboard_config(d)
    return {name: yaml.safe_dump(doc, sort_keys=False) for name, doc in bundle.items()}, dashboards
