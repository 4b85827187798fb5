"""Column-level lineage of the marts: which source entities a mart column's values depend on.

dbt-core records lineage per model (the manifest's ``child_map``): every exchange mart then
"depends on" the CRM users, because the user x product x day rollup carries fees counted from
each user's registration. A late CRM delivery would hold the exchange's volume alerts too. This
module reads the SQL dbt compiled for each model (the last build's manifest, ``compiled_code``)
with sqlglot and follows one column down to the raw tables:

- the **expression** of the column, through each CTE, subquery and upstream model (sqlglot's
  ``lineage``), e.g. ``volume_usd`` -> the rollup's ``volume_usd`` -> the priced trades'
  ``volume_usd`` -> ``raw.exchange_trades`` and the prices;
- the **rows** every step reads, since a count or a sum depends on which rows there are: the
  ``FROM`` and inner-joined relations of each query the column passes through, and the
  relations of subqueries in their ``WHERE`` / ``HAVING`` (semi-joins). A ``LEFT JOIN``'s right
  side does not decide the rows (its columns count only where the expression uses them).

The relations' columns (for ``select *``) are the ones the project's YAML documents, read from
the manifest too: no warehouse access, so the publisher's role, which cannot see the schemas a
lineage goes through, gets the same answer.

Conservative by construction: a model without compiled SQL (a build that selected other
models, a manifest from ``dbt parse``), SQL sqlglot cannot follow, or a column it cannot find
(an undocumented one behind a ``select *``) gives ``None``, and callers fall back to
model-level lineage.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class ColumnLineage:
    """Lineage over one manifest: ``sources(mart, column)`` -> {"exchange/trades", ...}."""

    manifest: dict
    # {catalog: {schema: {table: {column: type}}}}: lets sqlglot expand `select *`
    schema: dict
    _models: dict[tuple[str, str], str] = field(default_factory=dict)
    _sources: dict[tuple[str, str], str] = field(default_factory=dict)
    _columns: dict[tuple[str, str], frozenset[str] | None] = field(default_factory=dict)
    _rows: dict[str, frozenset[str] | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for uid, node in self.manifest.get("nodes", {}).items():
            if node.get("resource_type") == "model":
                self._models[(node["schema"], node.get("alias") or node["name"])] = uid
        for src in self.manifest.get("sources", {}).values():
            label = f"{src['source_name']}/{src['name']}"
            self._sources[(src["schema"], src.get("identifier") or src["name"])] = label

    def sources(self, mart: str, column: str) -> frozenset[str] | None:
        """The source entities (``source/entity``) column ``column`` of model ``mart`` depends
        on; None when that cannot be worked out (use model-level lineage)."""
        uid = self._models.get(("marts", mart)) or next(
            (u for (_, name), u in self._models.items() if name == mart), None
        )
        return None if uid is None else self._column(uid, column)

    def metric_sources(
        self, mart: str, sql: str, columns: tuple[str, ...] = ()
    ) -> frozenset[str] | None:
        """The source entities a metric of ``mart`` depends on: its SQL aggregate over the
        mart's rows (``sum(volume_usd)``, ``count(*)``), the segment ``columns`` it is read by,
        and what decides the mart's rows."""
        from sqlglot import exp, parse_one

        uid = self._models.get(("marts", mart))
        if uid is None:
            return None
        try:
            used = {c.name for c in parse_one(sql, dialect="postgres").find_all(exp.Column)}
        except Exception as exc:
            log.debug("metric %s of %s not parsed: %s", sql, mart, exc)
            return None
        out: set[str] = set()
        for found in [self._model_rows(uid)] + [
            self._column(uid, c) for c in sorted(used | set(columns))
        ]:
            if found is None:
                return None
            out |= found
        return frozenset(out)

    # ---- internals ----------------------------------------------------------------------

    def _sql(self, uid: str) -> str | None:
        return self.manifest["nodes"][uid].get("compiled_code") or None

    def _column(self, uid: str, column: str) -> frozenset[str] | None:
        key = (uid, column)
        if key in self._columns:
            return self._columns[key]
        self._columns[key] = frozenset()  # a cycle (never in dbt's DAG) adds nothing
        try:
            found = self._trace(uid, column)
        except Exception as exc:  # sqlglot's errors are many; any of them: fall back
            log.debug("column lineage of %s.%s not followed: %s", uid, column, exc)
            found = None
        self._columns[key] = found
        return found

    def _trace(self, uid: str, column: str) -> frozenset[str] | None:
        from sqlglot import exp
        from sqlglot.lineage import lineage

        sql = self._sql(uid)
        if sql is None:
            return None
        root = lineage(column, sql, schema=self.schema, dialect="postgres")
        ctes = _ctes(root.source)
        out: set[str] = set()
        for node in root.walk():
            if isinstance(node.source, exp.Table):
                if node.downstream:
                    continue
                found = self._table_column(uid, node.source, node.name.split(".")[-1])
            elif isinstance(node.source, exp.Query):
                found = self._query_rows(uid, node.source, ctes)
            else:  # a set-returning function, a VALUES list: rows of the query, counted there
                found = frozenset()
            if found is None:
                return None
            out |= found
        return frozenset(out)

    def _through(self, uid: str, table, follow) -> frozenset[str] | None:
        """A schema-qualified relation read by model ``uid``: a source is itself; a model is
        followed (``follow(model)``); the model itself (an incremental model reading its rows
        so far) adds nothing; a relation dbt does not know: None."""
        rel = (table.db, table.name)
        if rel in self._sources:
            return frozenset({self._sources[rel]})
        model = self._models.get(rel)
        if model is None:
            return None
        return frozenset() if model == uid else follow(model)

    def _table_column(self, uid: str, table, column: str) -> frozenset[str] | None:
        if not table.db:  # a set-returning function's rows (generate_series): no relation
            return frozenset()
        return self._through(uid, table, lambda model: self._column(model, column))

    def _model_rows(self, uid: str) -> frozenset[str] | None:
        """What decides a model's rows: the row sources of its outer query."""
        from sqlglot import parse_one

        if uid in self._rows:
            return self._rows[uid]
        self._rows[uid] = frozenset()
        sql = self._sql(uid)
        found = None
        try:
            if sql is not None:
                tree = parse_one(sql, dialect="postgres")
                found = self._query_rows(uid, tree, _ctes(tree))
        except Exception as exc:
            log.debug("rows of %s not followed: %s", uid, exc)
            found = None
        self._rows[uid] = found
        return found

    def _query_rows(self, uid: str, query, ctes: dict, seen: frozenset = frozenset()):
        """Row sources of a query: its FROM and inner/right/full-joined relations and the
        relations of subqueries filtering it, followed through CTEs and subqueries."""
        from sqlglot import exp

        if isinstance(query, exp.SetOperation):
            left = self._query_rows(uid, query.left, ctes, seen)
            right = self._query_rows(uid, query.right, ctes, seen)
            return None if left is None or right is None else left | right
        if isinstance(query, exp.Subquery):
            return self._query_rows(uid, query.this, ctes, seen)
        if not isinstance(query, exp.Select):
            return frozenset()
        ctes = {**ctes, **_ctes(query)}
        relations = []
        from_ = query.args.get("from") or query.args.get("from_")
        if from_ is not None:
            relations.append(from_.this)
        for join in query.args.get("joins") or ():
            if (join.side or "").upper() != "LEFT":
                relations.append(join.this)
        for clause in ("where", "having"):
            condition = query.args.get(clause)
            if condition is not None:
                relations += list(condition.find_all(exp.Select))
        out: set[str] = set()
        for rel in relations:
            found = self._relation_rows(uid, rel, ctes, seen)
            if found is None:
                return None
            out |= found
        return frozenset(out)

    def _relation_rows(self, uid: str, rel, ctes: dict, seen: frozenset):
        from sqlglot import exp

        if isinstance(rel, exp.Table):
            if not rel.db and rel.name in ctes:
                if rel.name in seen:
                    return frozenset()
                return self._query_rows(uid, ctes[rel.name], ctes, seen | {rel.name})
            if isinstance(rel.this, exp.Func) or not rel.name:  # generate_series(...) etc.
                return frozenset()
            return self._through(uid, rel, self._model_rows)
        if isinstance(rel, (exp.Subquery, exp.Query)):
            return self._query_rows(uid, rel, ctes, seen)
        return frozenset()  # a lateral function, values list ...


def _ctes(query) -> dict:
    from sqlglot import exp

    with_ = query.args.get("with") or query.args.get("with_")
    if with_ is None:
        return {}
    return {cte.alias: cte.this for cte in with_.expressions if isinstance(cte, exp.CTE)}


def manifest_schema(manifest: dict) -> dict:
    """The relations' columns as the project documents them (every model's and source's YAML;
    the contracted marts enforce theirs), as sqlglot's schema mapping: it lets sqlglot expand
    `select *`. Read from the manifest, not the warehouse: the publisher's role cannot see the
    raw, staging and intermediate schemas a lineage goes through."""
    out: dict = {}
    for node in [*manifest.get("nodes", {}).values(), *manifest.get("sources", {}).values()]:
        if node.get("resource_type") not in ("model", "source") or not node.get("columns"):
            continue
        table = node.get("alias") or node.get("identifier") or node["name"]
        columns = {
            name: (column.get("data_type") or "text") for name, column in node["columns"].items()
        }
        out.setdefault(node["database"], {}).setdefault(node["schema"], {})[table] = columns
    return out


def load(manifest_path: Path | None = None) -> ColumnLineage | None:
    """Column lineage over the last build's manifest; None when there is none."""
    from exops.transform import dbt_var_dir

    path = manifest_path or dbt_var_dir() / "target" / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("no dbt manifest at %s (%s): column lineage unknown", path, exc)
        return None
    return ColumnLineage(manifest, manifest_schema(manifest))
