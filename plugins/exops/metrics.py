"""``exops metrics``: the dbt semantic layer (MetricFlow) over the marts, queried as bi_reader.

The semantic models and metrics live in ``dbt_project/models/semantic/``. Each metric
declares there, once, where it is valid (``config.meta.valid``):

- ``grains``: the grains of ``metric_time`` it may be grouped by; ``total`` means it may also
  be queried without a time group-by (summed over the range). A distinct count or a median
  has only the grain its mart computed it at;
- ``dimensions``: what it may be grouped by besides ``metric_time``;
- ``required``: what it must be grouped by (the rest of its mart's grain, for a count that is
  distinct per product, campaign, week number ...).

:func:`check_validity` refuses any query outside that before MetricFlow builds its SQL; the
table in ``dbt_project/models/semantic/README.md`` is :func:`validity_table_markdown`.

MetricFlow needs dbt's semantic manifest: ``dbt parse`` writes it once per version of the dbt
project under ``var/dbt/semantic/`` (no warehouse connection). Relations are schema-qualified
(no database), so the SQL ``--explain`` prints runs in any BI tool connected to the warehouse.
Queries run on a read-only connection as ``bi_reader`` (:func:`exops.warehouse.bi_reader_url`),
in UTC.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from exops import warehouse
from exops.settings import dbt_project_dir, var_dir

GRAINS = ("day", "week", "month", "quarter", "year")
TOTAL = "total"
METRIC_TIME = "metric_time"


class MetricsError(RuntimeError):
    """The semantic layer cannot answer (not built, bad declaration, bad query)."""


class QueryRefused(MetricsError):
    """A query outside a metric's valid grains or dimensions."""


@dataclass(frozen=True)
class Validity:
    grains: tuple[str, ...]
    dimensions: tuple[str, ...] = ()
    required: tuple[str, ...] = ()

    @classmethod
    def from_meta(cls, metric: str, meta: dict | None) -> Validity:
        """The ``valid`` block of a metric's ``config.meta``, checked."""
        where = f"metric {metric} (dbt_project/models/semantic/, config.meta.valid)"
        valid = (meta or {}).get("valid")
        if not isinstance(valid, dict):
            raise MetricsError(f"{where}: missing; every metric declares where it is valid")
        unknown = set(valid) - {"grains", "dimensions", "required"}
        if unknown:
            raise MetricsError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        grains = tuple(valid.get("grains") or ())
        bad = [g for g in grains if g not in (*GRAINS, TOTAL)]
        if not grains or bad:
            raise MetricsError(
                f"{where}: grains must be a non-empty list of {', '.join((*GRAINS, TOTAL))}"
                + (f", got {', '.join(map(str, bad))}" if bad else "")
            )
        dimensions = tuple(valid.get("dimensions") or ())
        required = tuple(valid.get("required") or ())
        if set(required) - set(dimensions):
            raise MetricsError(f"{where}: required dimensions must be among its dimensions")
        return cls(grains=grains, dimensions=dimensions, required=required)


@dataclass(frozen=True)
class MetricInfo:
    name: str
    label: str
    description: str
    type: str
    semantic_model: str
    validity: Validity


@dataclass(frozen=True)
class GroupBy:
    """A query's group-by, resolved: the time grain (None: no time group-by) and dimensions."""

    grain: str | None
    dimensions: tuple[str, ...]

    def names(self) -> list[str]:
        time = [f"{METRIC_TIME}__{self.grain}"] if self.grain else []
        return time + list(self.dimensions)


@dataclass(frozen=True)
class QueryResult:
    sql: str
    columns: list[str]
    rows: list[tuple]


def bare_name(dimension: str) -> str:
    """``product__product_line`` -> ``product_line``."""
    return dimension.split("__", 1)[-1]


def check_validity(metrics: Sequence[MetricInfo], group_by: GroupBy) -> None:
    """Refuse a query any of whose metrics is not valid at its grain or dimensions."""
    for metric in metrics:
        v = metric.validity
        grain = group_by.grain or TOTAL
        if grain not in v.grains:
            allowed = ", ".join(
                f"{METRIC_TIME}__{g}" if g != TOTAL else "no time group-by" for g in v.grains
            )
            asked = f"by {METRIC_TIME}__{grain}" if group_by.grain else "without a time group-by"
            raise QueryRefused(
                f"{metric.name} cannot be queried {asked}: it is valid only at {allowed}"
                f" ({metric.description.rstrip('.')}). See `exops metrics list`."
            )
        extra = [d for d in group_by.dimensions if d not in v.dimensions]
        if extra:
            allowed = ", ".join(v.dimensions) or "none"
            raise QueryRefused(
                f"{metric.name} cannot be grouped by {', '.join(extra)}: its dimensions are"
                f" {allowed}. See `exops metrics list`."
            )
        missing = [d for d in v.required if d not in group_by.dimensions]
        if missing:
            raise QueryRefused(
                f"{metric.name} must be grouped by {', '.join(missing)}: it is not additive"
                f" across {'them' if len(missing) > 1 else 'it'}"
                f" ({metric.description.rstrip('.')}). Add --group-by {','.join(missing)}."
            )


def resolve_group_by(metrics: Sequence[MetricInfo], items: Iterable[str]) -> GroupBy:
    """Group-by items as typed (``month``, ``metric_time__week``, ``product_line``) resolved.

    A bare dimension name stands for the one qualified name among the metrics' dimensions that
    ends with it; ``metric_time`` alone for the finest grain every metric allows.
    """
    grain: str | None = None
    dimensions: list[str] = []
    known = sorted({d for m in metrics for d in m.validity.dimensions})
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        name = item.lower()
        time_grain = None
        if name in GRAINS:
            time_grain = name
        elif name == METRIC_TIME:
            common = [g for g in GRAINS if all(g in m.validity.grains for m in metrics)]
            if not common:
                raise QueryRefused(
                    "the metrics share no time grain: "
                    + "; ".join(f"{m.name}: {', '.join(m.validity.grains)}" for m in metrics)
                )
            time_grain = common[0]
        elif name.startswith(f"{METRIC_TIME}__"):
            time_grain = name.split("__", 1)[1]
            if time_grain not in GRAINS:
                raise QueryRefused(
                    f"{item}: unknown time grain; use {METRIC_TIME}__ one of {', '.join(GRAINS)}"
                )
        if time_grain:
            if grain and grain != time_grain:
                raise QueryRefused(
                    f"group by one time grain at a time, not {grain} and {time_grain}"
                )
            grain = time_grain
            continue
        if "__" in name:
            qualified = name
        else:
            matches = [d for d in known if bare_name(d) == name]
            if len(matches) > 1:
                raise QueryRefused(f"{item} is ambiguous: say which, {' or '.join(matches)}")
            if not matches:
                names = ", ".join(known) or "none (only metric_time)"
                raise QueryRefused(
                    f"{item} is not a dimension of {', '.join(m.name for m in metrics)};"
                    f" valid: {names}. See `exops metrics list`."
                )
            qualified = matches[0]
        if qualified not in dimensions:
            dimensions.append(qualified)
    return GroupBy(grain=grain, dimensions=tuple(dimensions))


_QUOTED = re.compile(r"('(?:[^']|'')*')")
_NAME = re.compile(r"\b([a-z_][a-z0-9_]*)\b")


def where_to_metricflow(where: str, metrics: Sequence[MetricInfo]) -> str:
    """A filter in plain names (``product_line = 'spot'``) as MetricFlow's Jinja filter.

    Dimension names (bare or qualified) and ``metric_time[__grain]`` outside quotes become
    ``{{ Dimension(...) }}`` / ``{{ TimeDimension(...) }}``; a filter already written in
    MetricFlow's syntax (``{{ ... }}``) is passed on as it is.
    """
    if "{{" in where:
        return where
    known = {d for m in metrics for d in m.validity.dimensions}
    by_bare: dict[str, list[str]] = {}
    for d in known:
        by_bare.setdefault(bare_name(d), []).append(d)

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name == METRIC_TIME:
            return f"{{{{ TimeDimension('{METRIC_TIME}', 'day') }}}}"
        if name.startswith(f"{METRIC_TIME}__") and name.split("__", 1)[1] in GRAINS:
            return f"{{{{ TimeDimension('{METRIC_TIME}', '{name.split('__', 1)[1]}') }}}}"
        if name in known:
            return f"{{{{ Dimension('{name}') }}}}"
        if name in by_bare:
            if len(by_bare[name]) > 1:
                raise QueryRefused(f"{name} in --where is ambiguous: {' or '.join(by_bare[name])}")
            return f"{{{{ Dimension('{by_bare[name][0]}') }}}}"
        return name

    parts = _QUOTED.split(where)
    return "".join(p if i % 2 else _NAME.sub(replace, p) for i, p in enumerate(parts))


# -- the semantic manifest -------------------------------------------------------------------


def semantic_manifest_path() -> Path:
    """dbt's semantic manifest of the current dbt project (``dbt parse`` once per version)."""
    import fcntl

    from exops.transform import _dbt_args, _environment, profile_env
    from exops.transform.window import code_hash

    target = var_dir() / "dbt" / "semantic" / code_hash()
    path = target / "semantic_manifest.json"
    if path.exists():
        return path
    target.mkdir(parents=True, exist_ok=True)
    with open(target / "parse.lock", "w") as lock:
        # two first queries at once parse once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return path
        from dbt.cli.main import dbtRunner

        # parse reads profiles.yml but connects to nothing: any well-formed target does
        env = profile_env("postgresql://bi_reader@localhost/postgres")
        env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
        with _environment(env):
            res = dbtRunner().invoke(_dbt_args(["parse", "--quiet"], target))
    if not res.success or not path.exists():
        raise MetricsError(
            f"dbt parse of {dbt_project_dir()} failed: {res.exception or 'see var/dbt/logs'}"
        )
    return path


def _portable(manifest: dict) -> dict:
    """Relations as ``"schema"."table"``: the SQL then runs in whichever database holds them."""
    config = manifest.get("project_configuration", {})
    relations = [m["node_relation"] for m in manifest["semantic_models"]]
    relations += [s["node_relation"] for s in config.get("time_spines", [])]
    for rel in relations:
        rel["database"] = None
        rel["relation_name"] = f'"{rel["schema_name"]}"."{rel["alias"]}"'
    return manifest


class _BiReaderSqlClient:
    """MetricFlow's SqlClient protocol on one read-only psycopg connection (PostgreSQL)."""

    def __init__(self, url: str | None) -> None:
        from metricflow.protocols.sql_client import SqlEngine
        from metricflow.sql.render.postgres import PostgresSQLSqlPlanRenderer

        self.sql_engine_type = SqlEngine.POSTGRES
        self.sql_plan_renderer = PostgresSQLSqlPlanRenderer()
        self._url = url
        self._conn: psycopg.Connection | None = None

    def connection(self) -> psycopg.Connection:
        if self._conn is None:
            # resolved on first use: --explain and list need no warehouse
            self._conn = warehouse.connect(
                self._url or warehouse.bi_reader_url(),
                autocommit=True,
                application_name="exops-metrics",
                options="-c default_transaction_read_only=on -c TimeZone=UTC",
            )
        return self._conn

    def fetch(self, stmt: str, params: dict | None = None) -> tuple[list[str], list[tuple]]:
        try:
            cur = self.connection().execute(stmt, params or None)
        except psycopg.errors.InsufficientPrivilege as exc:
            user = self.connection().info.user
            raise MetricsError(
                f"{user} may not read what the query needs ({exc.diag.message_primary}):"
                " run `exops warehouse init` (bi_reader reads schema marts)"
            ) from None
        except psycopg.errors.UndefinedTable as exc:
            raise MetricsError(
                f"{exc.diag.message_primary}: build the marts first (`exops transform`)"
            ) from None
        columns = [c.name for c in cur.description or []]
        return columns, cur.fetchall() if cur.description else []

    def query(self, stmt: str, sql_bind_parameter_set: Any = None) -> Any:
        from metricflow.data_table.mf_table import MetricFlowDataTable

        columns, rows = self.fetch(stmt, _params(sql_bind_parameter_set))
        return MetricFlowDataTable.create_from_rows(column_names=columns, rows=rows)

    def execute(self, stmt: str, sql_bind_parameter_set: Any = None) -> None:
        self.fetch(stmt, _params(sql_bind_parameter_set))

    def dry_run(self, stmt: str, sql_bind_parameter_set: Any = None) -> None:
        self.fetch(f"explain {stmt}", _params(sql_bind_parameter_set))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def render_bind_parameter_key(self, bind_parameter_key: str) -> str:
        return f"%({bind_parameter_key})s"


def _params(bind_parameter_set: Any) -> dict | None:
    if bind_parameter_set is None:
        return None
    items = bind_parameter_set.param_dict.items()
    return {k: getattr(v, "value", v) for k, v in items} or None


class SemanticLayer:
    """MetricFlow over the marts, as ``bi_reader`` (``url``, default :func:`bi_reader_url`)."""

    def __init__(self, url: str | None = None) -> None:
        from metricflow.engine.metricflow_engine import MetricFlowEngine
        from metricflow_semantics.model.dbt_manifest_parser import (
            parse_manifest_from_dbt_generated_manifest,
        )
        from metricflow_semantics.model.semantic_manifest_lookup import SemanticManifestLookup

        raw = json.loads(semantic_manifest_path().read_text())
        manifest = parse_manifest_from_dbt_generated_manifest(json.dumps(_portable(raw)))
        self._client = _BiReaderSqlClient(url)
        self._metrics = {
            m["name"]: MetricInfo(
                name=m["name"],
                label=m.get("label") or m["name"],
                description=" ".join((m.get("description") or "").split()),
                type=m["type"],
                semantic_model=_semantic_model_of(m["name"], raw),
                validity=Validity.from_meta(m["name"], (m.get("config") or {}).get("meta")),
            )
            for m in raw["metrics"]
        }
        self._engine = MetricFlowEngine(SemanticManifestLookup(manifest), self._client)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SemanticLayer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def metrics(self) -> list[MetricInfo]:
        return sorted(self._metrics.values(), key=lambda m: (m.semantic_model, m.name))

    def metric(self, name: str) -> MetricInfo:
        try:
            return self._metrics[name]
        except KeyError:
            import difflib

            close = difflib.get_close_matches(name, self._metrics, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise MetricsError(f"unknown metric {name!r}{hint}: see `exops metrics list`") from None

    def explain(
        self,
        metrics: Sequence[str],
        group_by: Sequence[str] = (),
        where: str | None = None,
        start: dt.date | None = None,
        end: dt.date | None = None,
    ) -> str:
        """The SQL of a query (checked against the metrics' validity first)."""
        from metricflow.engine.metricflow_engine import MetricFlowQueryRequest
        from metricflow_semantics.errors.error_classes import InvalidQueryException

        infos = [self.metric(m.strip()) for m in metrics if m.strip()]
        if not infos:
            raise MetricsError("no metric given: --metrics NAME[,NAME]")
        resolved = resolve_group_by(infos, group_by)
        check_validity(infos, resolved)
        names = resolved.names()
        request = MetricFlowQueryRequest.create(
            metric_names=[m.name for m in infos],
            group_by_names=names,
            where_constraints=[where_to_metricflow(where, infos)] if where else None,
            time_constraint_start=_midnight(start),
            time_constraint_end=_midnight(end),
            order_by_names=names,
        )
        try:
            result = self._engine.explain(request)
        except InvalidQueryException as exc:
            raise MetricsError(f"MetricFlow refused the query: {exc}") from None
        statement = result.sql_statement
        if statement.bind_parameter_set.param_dict:
            raise MetricsError("MetricFlow produced a query with bind parameters: not supported")
        return statement.sql

    def query(
        self,
        metrics: Sequence[str],
        group_by: Sequence[str] = (),
        where: str | None = None,
        start: dt.date | None = None,
        end: dt.date | None = None,
    ) -> QueryResult:
        """Run a query as bi_reader; day-or-coarser times come back as dates."""
        sql = self.explain(metrics, group_by, where, start, end)
        columns, rows = self._client.fetch(sql)
        return QueryResult(sql=sql, columns=columns, rows=[tuple(map(_as_date, r)) for r in rows])


def _semantic_model_of(metric: str, raw: dict) -> str:
    """The semantic model of a metric's (first) input measure, for listing."""
    by_name = {m["name"]: m for m in raw["metrics"]}
    measures = {
        measure["name"]: model["name"]
        for model in raw["semantic_models"]
        for measure in model.get("measures", [])
    }
    seen: set[str] = set()
    todo = [metric]
    while todo:
        name = todo.pop(0)
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        params = by_name[name]["type_params"]
        for measure in params.get("input_measures") or []:
            if measure["name"] in measures:
                return measures[measure["name"]]
        for key in ("numerator", "denominator"):
            if params.get(key):
                todo.append(params[key]["name"])
        todo += [m["name"] for m in params.get("metrics") or []]
    return ""


def _midnight(day: dt.date | None) -> dt.datetime | None:
    return None if day is None else dt.datetime.combine(day, dt.time())


def _as_date(value: Any) -> Any:
    """MetricFlow truncates dates to timestamps (UTC here): a midnight is the day it starts."""
    if (
        isinstance(value, dt.datetime)
        and value.time() == dt.time()
        and value.utcoffset()
        in (
            None,
            dt.timedelta(0),
        )
    ):
        return value.date()
    return value


# -- output ------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def format_csv(result: QueryResult) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


def format_table(result: QueryResult) -> str:
    cells = [[_cell(v) for v in row] for row in result.rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(result.columns)]
    numeric = [
        all(isinstance(row[i], int | float | Decimal) or row[i] is None for row in result.rows)
        for i in range(len(result.columns))
    ]

    def line(values: list[str]) -> str:
        cells = zip(values, widths, numeric, strict=True)
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in cells).rstrip()

    lines = [line(list(result.columns)), line(["-" * w for w in widths])]
    lines += [line(row) for row in cells]
    lines.append(f"({len(cells)} row{'s' if len(cells) != 1 else ''})")
    return "\n".join(lines)


def validity_table_markdown(metrics: Sequence[MetricInfo]) -> str:
    """The metric x dimensions x grains table of the semantic layer's README."""
    rows = [
        "| metric | type | mart (semantic model) | time grains | dimensions | must group by |",
        "|---|---|---|---|---|---|",
    ]
    for m in metrics:
        v = m.validity
        rows.append(
            f"| `{m.name}` | {m.type} | {m.semantic_model} | {', '.join(v.grains)} |"
            f" {', '.join(f'`{d}`' for d in v.dimensions) or '-'} |"
            f" {', '.join(f'`{d}`' for d in v.required) or '-'} |"
        )
    return "\n".join(rows)
