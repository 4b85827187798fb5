"""What one validation run checks: every day (``--full``) or only the days new loads touch.

A daily run checks the partitions loaded since the last validation that passed (their
``load_id`` is above that run's ``load_id_ceiling`` in ``quality.validation_runs``) and every
day their records can change: a record may be up to ``late_arrival_days`` (a dbt var)
older than its partition, so the window starts that many days before the earliest new
partition. With no passing run to build on, a run checks everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import psycopg
import yaml

from exops.settings import dbt_project_dir


@dataclass(frozen=True)
class Scope:
    """The days a run checks: ``since``..``as_of``, or (``since`` None) every day the marts
    cover, from the first day with data (the earliest partition loaded) to ``as_of``."""

    as_of: date
    first_day: date
    since: date | None = None
    load_id_ceiling: int | None = None  # the greatest load_id the run covers

    @property
    def full(self) -> bool:
        return self.since is None

    @property
    def start(self) -> date:
        return self.first_day if self.since is None else max(self.since, self.first_day)

    def days(self, column: str) -> str:
        """SQL condition: ``column`` (a date) is a day this run checks."""
        return (
            f"{column} >= date '{self.start.isoformat()}'"
            f" and {column} <= date '{self.as_of.isoformat()}'"
        )

    def periods(self, column: str, unit: str) -> str:
        """SQL condition: the ``unit`` ('week', 'month') starting on ``column`` holds a day
        this run checks."""
        first = f"date_trunc('{unit}', date '{self.start.isoformat()}')::date"
        return f"{column} >= {first} and {column} <= date '{self.as_of.isoformat()}'"

    def describe(self) -> str:
        if self.since is None:
            return f"all days up to {self.as_of}"
        return f"days {self.since}..{self.as_of}"


def late_arrival_days() -> int:
    """The dbt var ``late_arrival_days``: how much older than its partition a record may be."""
    path = dbt_project_dir() / "dbt_project.yml"
    value = (yaml.safe_load(path.read_text()).get("vars") or {}).get("late_arrival_days")
    if not isinstance(value, int) or value < 0:
        raise ValueError(
            f"{path}: vars.late_arrival_days must be a non-negative integer, found {value!r}"
        )
    return value


def resolve_scope(conn: psycopg.Connection, as_of: date, full: bool = False) -> Scope:
    """The window of a run for ``as_of``: everything when ``full`` or when no earlier run
    passed, else the days of the partitions loaded since that run, widened for late records.
    """
    first_day, ceiling = conn.execute(
        "select min(partition_date), max(load_id) from audit.partitions"
    ).fetchone()
    if full:
        return Scope(as_of, first_day, None, ceiling)
    previous = conn.execute(
        "select load_id_ceiling from quality.validation_runs"
        " where passed and load_id_ceiling is not null"
        " order by finished_at desc limit 1"
    ).fetchone()
    if previous is None:
        return Scope(as_of, first_day, None, ceiling)
    first_new = conn.execute(
        "select min(partition_date) from audit.partitions where load_id > %s", (previous[0],)
    ).fetchone()[0]
    late = timedelta(days=late_arrival_days())
    # nothing new loaded: the as-of date's own late window is still checked
    since = as_of - late if first_new is None else min(first_new, as_of) - late
    return Scope(as_of, first_day, since, ceiling)
