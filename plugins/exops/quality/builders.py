"""Building blocks for the suites in expectations/: GX expectations with a name and severity.

GX is imported inside these functions only (it takes seconds to import). Every expectation
carries ``meta = {"name": ..., "severity": "critical" | "warning"}``; critical blocks
publishing, warning is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from exops.quality.catalogue import Mart

CRITICAL = "critical"
WARNING = "warning"


@dataclass
class SuiteSpec:
    """One GX suite over one table (``{batch}`` in SQL rules is that table)."""

    name: str
    schema: str
    table: str
    expectations: list[Any] = field(default_factory=list)


def _meta(name: str, severity: str) -> dict:
    return {"name": name, "severity": severity}


def rows_rule(name: str, sql: str, severity: str = CRITICAL) -> Any:
    """Passes when ``sql`` returns no rows; the rows it returns are the examples."""
    import great_expectations as gx

    return gx.expectations.UnexpectedRowsExpectation(
        unexpected_rows_query=sql, description=name, meta=_meta(name, severity)
    )


def not_null(column: str, severity: str = CRITICAL) -> Any:
    import great_expectations as gx

    name = f"{column} not null"
    return gx.expectations.ExpectColumnValuesToNotBeNull(
        column=column, description=name, meta=_meta(name, severity)
    )


def unique(columns: tuple[str, ...], severity: str = CRITICAL) -> Any:
    import great_expectations as gx

    name = f"key ({', '.join(columns)}) unique"
    if len(columns) == 1:
        return gx.expectations.ExpectColumnValuesToBeUnique(
            column=columns[0], description=name, meta=_meta(name, severity)
        )
    return gx.expectations.ExpectCompoundColumnsToBeUnique(
        column_list=list(columns), description=name, meta=_meta(name, severity)
    )


def between(column: str, low: float | None, high: float | None, severity: str = CRITICAL) -> Any:
    import great_expectations as gx

    if high is None:
        name = f"{column} >= {low:g}"
    else:
        name = f"{column} within [{low:g}, {high:g}]"
    return gx.expectations.ExpectColumnValuesToBeBetween(
        column=column,
        min_value=low,
        max_value=high,
        description=name,
        meta=_meta(name, severity),
    )


def in_set(column: str, values: tuple[str, ...], severity: str = CRITICAL) -> Any:
    import great_expectations as gx

    name = f"{column} in ({', '.join(values)})"
    return gx.expectations.ExpectColumnValuesToBeInSet(
        column=column, value_set=list(values), description=name, meta=_meta(name, severity)
    )


def mart_suite(m: Mart, as_of: date, rows_per_day: int | None = None) -> SuiteSpec:
    """The checks every mart gets from the catalogue: keys, ranges, freshness, day spine."""
    spec = SuiteSpec(m.name, "marts", m.name)
    e = spec.expectations
    for column in m.keys:
        e.append(not_null(column))
    e.append(unique(m.keys))
    for column in m.rates:
        e.append(between(column, 0, 1))
    for column in m.non_negative:
        e.append(between(column, 0, None))
    for column, (low, high) in m.bounds.items():
        e.append(between(column, low, high))
    d = m.date_column
    if m.fresh_to_as_of:
        e.append(
            rows_rule(
                f"{d} reaches the as-of date {as_of}",
                f"select max({d}) as latest_{d} from {{batch}} "
                f"having max({d}) is distinct from date '{as_of.isoformat()}'",
            )
        )
    if m.dense_daily:
        e.append(
            rows_rule(
                f"every day up to {as_of} has rows",
                f"select day::date as missing_day from generate_series("
                f"(select min({d}) from {{batch}}), date '{as_of.isoformat()}', "
                f"interval '1 day') as day where day::date not in (select {d} from {{batch}}) "
                "order by 1",
            )
        )
    if rows_per_day:
        e.append(
            rows_rule(
                f"{rows_per_day} rows per day",
                f"select {d}, count(*) as rows from {{batch}} group by 1 "
                f"having count(*) <> {rows_per_day} order by 1",
            )
        )
    return spec
