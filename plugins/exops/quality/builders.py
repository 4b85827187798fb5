"""Building blocks for the suites in expectations/: GX expectations with a name and severity.

GX is imported inside these functions only (it takes seconds to import). Every expectation
carries ``meta = {"name": ..., "severity": "critical" | "warning"}``; critical blocks
publishing, warning is reported. Rules check numbers (reconciliations across layers, the
day spine, bounds on change) within the run's :class:`~exops.quality.scope.Scope`;
structural checks (keys, nulls, enumerations, ranges) are dbt's: data tests, and the
published marts' contract constraints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from exops.marts import Mart
from exops.quality.scope import Scope

CRITICAL = "critical"
WARNING = "warning"


@dataclass
class SuiteSpec:
    """One GX suite over one table (``{batch}`` in SQL rules is that table).

    ``requires`` names the other relations its rules read (``staging.stg_crm__users``...):
    a missing one fails the suite instead of silently skipping a reconciliation.
    """

    name: str
    schema: str
    table: str
    expectations: list[Any] = field(default_factory=list)
    requires: set[str] = field(default_factory=set)


def _meta(name: str, severity: str) -> dict:
    return {"name": name, "severity": severity}


def rows_rule(name: str, sql: str, severity: str = CRITICAL) -> Any:
    """Passes when ``sql`` returns no rows; the rows it returns are the examples.

    A query with a JOIN must alias every ``{batch}`` itself (``{batch} as mart``): GX then
    substitutes a bare subquery, which PostgreSQL 15 rejects without an alias.
    """
    from exops.quality.gx_import import great_expectations

    gx = great_expectations()
    return gx.expectations.UnexpectedRowsExpectation(
        unexpected_rows_query=sql, description=name, meta=_meta(name, severity)
    )


def reconciliation(
    name: str,
    keys: tuple[str, ...],
    expected: str,
    compare: dict[str, float],
    window: str,
    actual: str | None = None,
    severity: str = CRITICAL,
    nullable: tuple[str, ...] = (),
) -> Any:
    """Passes when the mart's numbers equal those recomputed from the layer below.

    ``expected`` is a query returning ``keys`` and the ``compare`` columns (a missing group
    counts as 0); ``actual`` likewise over ``{batch} as mart`` (default: the mart's own
    rows within ``window``). ``compare`` maps each column to its tolerance: 0 for counts and
    exact sums, 0.01 for USD. A group on either side only, a null, or a difference beyond
    the tolerance is an unexpected row showing both values. The ``nullable`` columns (an
    average, a median: null over nothing) match when both sides are null, and a missing group
    is null for them.
    """
    columns = ", ".join((*keys, *compare))
    if actual is None:
        actual = f"select {columns} from {{batch}} as mart where {window}"

    def expected_value(c: str) -> str:
        return f"expected.{c}" if c in nullable else f"coalesce(expected.{c}, 0)"

    shown = ", ".join(
        [*keys, *(f"actual.{c} as mart_{c}, {expected_value(c)} as expected_{c}" for c in compare)]
    )
    differs = " or ".join(
        f"coalesce(abs(actual.{c} - {expected_value(c)}) > {tolerance},"
        f" (actual.{c} is null) <> ({expected_value(c)} is null))"
        if c in nullable
        else f"coalesce(abs(actual.{c} - {expected_value(c)}) > {tolerance}, true)"
        for c, tolerance in compare.items()
    )
    return rows_rule(
        name,
        f"with actual as ({actual}), expected as ({expected}) "
        f"select {shown} from actual full join expected using ({', '.join(keys)}) "
        f"where {differs} order by {', '.join(keys)}",
        severity,
    )


def derived(
    name: str,
    keys: tuple[str, ...],
    formulas: dict[str, tuple[str, float]],
    window: str,
    severity: str = CRITICAL,
) -> Any:
    """Passes when each derived column (a rate, a ratio, a difference) of the mart's rows
    within ``window`` equals its formula over the row's own columns: ``formulas`` maps the
    column to (SQL formula, tolerance); both null, or both set and within the tolerance."""
    shown = ", ".join([*keys, *(f"{c}, {f} as expected_{c}" for c, (f, _) in formulas.items())])
    differs = " or ".join(
        f"coalesce(abs({c} - ({f})) > {tolerance}, ({c} is null) <> (({f}) is null))"
        for c, (f, tolerance) in formulas.items()
    )
    return rows_rule(
        name,
        f"select {shown} from {{batch}} where {window} and ({differs}) order by {', '.join(keys)}",
        severity,
    )


def day_over_day(
    column: str, date_column: str, factor: float, scope: Scope, severity: str = WARNING
) -> Any:
    """Where no reconciliation can exist, a bound on the change: ``column`` on a day lies
    within [previous day / factor, previous day x factor] (a previous 0 is not compared)."""
    inner = f"{date_column} <= date '{scope.as_of.isoformat()}'"
    inner += f" and {date_column} >= date '{(scope.start - timedelta(days=1)).isoformat()}'"
    checked = f"{date_column} >= date '{scope.start.isoformat()}'"
    return rows_rule(
        f"{column} within x{factor:g} of the previous day",
        f"select {date_column}, {column}, previous_{column} from ("
        f"select {date_column}, {column},"
        f" lag({column}) over (order by {date_column}) as previous_{column}"
        f" from {{batch}} where {inner}) as days"
        f" where {checked} and previous_{column} > 0"
        f" and ({column} > {factor} * previous_{column} or {column} * {factor} < previous_{column})"
        " order by 1",
        severity,
    )


def mart_suite(m: Mart, scope: Scope, rows_per_day: int | None = None) -> SuiteSpec:
    """The shape every mart gets from the catalogue: freshness and, within the run's days,
    the day spine. Keys, nulls, enumerations and ranges are dbt data tests (the models'
    YAML): dbt checks them as it builds, so the gate does not check them again."""
    spec = SuiteSpec(m.name, "marts", m.name)
    e = spec.expectations
    d = m.date_column
    as_of = scope.as_of.isoformat()
    if m.fresh_to_as_of:
        e.append(
            rows_rule(
                f"{d} reaches the as-of date {as_of}",
                f"select max({d}) as latest_{d} from {{batch}} "
                f"having max({d}) is distinct from date '{as_of}'",
            )
        )
    if m.dense_daily:
        first = f"greatest((select min({d}) from {{batch}}), date '{scope.start.isoformat()}')"
        e.append(
            rows_rule(
                f"every day up to {as_of} has rows",
                f"select day::date as missing_day from generate_series({first},"
                f" date '{as_of}', interval '1 day') as day"
                f" where day::date not in (select {d} from {{batch}}) order by 1",
            )
        )
    if rows_per_day:
        e.append(
            rows_rule(
                f"{rows_per_day} rows per day",
                f"select {d}, count(*) as rows from {{batch}} where {scope.days(d)}"
                f" group by 1 having count(*) <> {rows_per_day} order by 1",
            )
        )
    return spec
