"""Source health: is each landing entity's delivery for a day complete, of a usual size, and
of a known shape, before any KPI built on it is believed?

Judged for the run's as-of date ``D`` (and the ``history_days`` before it), never by the
wall clock: the check instant is ``D + 1`` at ``checked_at_hour`` UTC
(``config/source_health.yaml``), so a replayed or simulated day is judged as it was live.

- **freshness**: partition ``dt=D`` loaded (``audit.partitions``: it had its ``_SUCCESS``)
  or not; when not, how far past its due time (``D + 1`` at ``due_hour``) the check is:
  ``warn_after_hours`` -> warn, ``error_after_hours`` -> error. A partition seen without
  ``_SUCCESS`` (``audit.pending_partitions``) is named as such.
- **volume**: rows loaded for ``dt=D`` against the same weekday of the previous weeks:
  robust z-score ``(x - median) / (1.4826 * MAD)`` and relative change to the median.
- **schema**: current files of the partition rejected whole or mostly bad
  (``audit.loads``), and columns (CSV header) or top-level keys (JSON Lines) the contract
  does not know, read from the partition's files in the landing zone.

Results go to ``audit.source_health`` (this module's table: one row per day, source, entity
and check), each with the marts that depend on the entity from dbt's lineage (the
manifest's ``child_map``, source -> models -> marts). dbt-core records lineage per model,
not per column, so the marts are found model by model.

Why not only ``dbt source freshness`` (the sources' ``freshness:`` blocks stay, for a live
deployment): dbt measures the age of ``loaded_at_field`` against the clock of the machine
running it, so a replayed or simulated day would always look stale; nor does it know about
partitions, volumes or rejected files.
"""

from __future__ import annotations

import gzip
import json
import logging
import statistics
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Literal

import psycopg
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from exops.contract import ENTITIES, Entity
from exops.settings import PROJECT_ROOT
from exops.warehouse import ensure_tables

log = logging.getLogger(__name__)

DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config" / "source_health.yaml"
STATUSES = ("ok", "warn", "error")
CHECKS = ("freshness", "volume", "schema")
MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation
HEAD_LINES = 200  # JSON Lines read per file for the schema check

SOURCE_HEALTH_DDL = (
    """
    create table if not exists audit.source_health (
      day date not null,
      source text not null,
      entity text not null,
      check_name text not null check (check_name in ('freshness', 'volume', 'schema')),
      status text not null check (status in ('ok', 'warn', 'error')),
      holds boolean not null,
      detail text not null,
      observed numeric,
      expected numeric,
      affected_marts text[],
      as_of date not null,
      checked_at timestamptz not null,
      recorded_at timestamptz not null default now(),
      primary key (day, source, entity, check_name)
    )
    """,
)


def ensure_source_health_table(conn: psycopg.Connection) -> None:
    """``audit.source_health`` (idempotent): created by ``exops warehouse init``, written by
    the quality gate (the transformer), read by publishing."""
    # init creates it; only a single-URL setup (the admin) gets here with it missing
    if conn.execute("select to_regclass('audit.source_health')").fetchone()[0] is None:
        ensure_tables(conn, "audit", SOURCE_HEALTH_DDL)


# ---- configuration --------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Freshness(_Strict):
    due_hour: float = Field(4, ge=0, le=48)
    warn_after_hours: float = Field(0, ge=0)
    error_after_hours: float = Field(12, ge=0)


class Volume(_Strict):
    weeks: int = Field(6, ge=1, le=52)
    min_weeks: int = Field(3, ge=1)
    min_median_rows: int = Field(20, ge=0)
    z: float = Field(4, gt=0)
    warn_relative_change: float = Field(0.5, gt=0)
    error_relative_change: float = Field(0.8, gt=0)


class Expectation(_Strict):
    freshness: Freshness = Freshness()
    volume: Volume = Volume()


class _Override(_Strict):
    freshness: dict = Field(default_factory=dict)
    volume: dict = Field(default_factory=dict)


class HealthConfig(_Strict):
    checked_at_hour: float = Field(8, ge=0, le=48)
    hold_from: Literal["warn", "error"] = "warn"
    history_days: int = Field(7, ge=0, le=60)
    defaults: Expectation = Expectation()
    sources: dict[str, _Override] = Field(default_factory=dict)

    def expectation(self, e: Entity) -> Expectation:
        """The defaults, then the source's overrides, then the entity's."""
        fresh = self.defaults.freshness.model_dump()
        volume = self.defaults.volume.model_dump()
        for key in (e.source, f"{e.source}/{e.name}"):
            over = self.sources.get(key)
            if over is not None:
                fresh.update(over.freshness)
                volume.update(over.volume)
        return Expectation(freshness=Freshness(**fresh), volume=Volume(**volume))

    def holds(self, status: str) -> bool:
        return STATUSES.index(status) >= STATUSES.index(self.hold_from)


class HealthConfigError(ValueError):
    pass


def load_config(path: Path | str | None = None) -> HealthConfig:
    """``config/source_health.yaml`` validated; raises HealthConfigError naming the file and
    the field at fault."""
    path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise HealthConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise HealthConfigError(f"{path}: not valid YAML: {exc}") from None
    known = {e.source for e in ENTITIES} | {f"{e.source}/{e.name}" for e in ENTITIES}
    for key in (data.get("sources") or {}) if isinstance(data, dict) else {}:
        if key not in known:
            raise HealthConfigError(
                f"{path}: sources.{key}: no such source or source/entity in the contract"
            )
    try:
        config = HealthConfig.model_validate(data)
        for e in ENTITIES:
            config.expectation(e)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise HealthConfigError(f"{path}: {problems}") from None
    return config


# ---- the checks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    day: date
    source: str
    entity: str
    check: str
    status: str
    holds: bool
    detail: str
    observed: float | None = None
    expected: float | None = None
    affected_marts: tuple[str, ...] | None = None


def check_instant(as_of: date, config: HealthConfig) -> datetime:
    """When the run reporting ``as_of`` judges its sources: ``as_of + 1`` at the configured
    hour, UTC (a deterministic function of the run's date, never the clock)."""
    return datetime.combine(as_of + timedelta(days=1), time(0), UTC) + timedelta(
        hours=config.checked_at_hour
    )


def robust_volume(
    observed: float, history: list[float], v: Volume
) -> tuple[str, str, float | None]:
    """(status, why, median) of ``observed`` rows against same-weekday ``history``."""
    if len(history) < v.min_weeks:
        return "ok", f"{len(history)} earlier same weekday(s), {v.min_weeks} needed", None
    median = statistics.median(history)
    if median < v.min_median_rows:
        return "ok", f"usual size {median:g} rows is below {v.min_median_rows}: not judged", median
    mad = statistics.median(abs(x - median) for x in history)
    spread = MAD_TO_SIGMA * mad
    if spread == 0:
        z = 0.0 if observed == median else float("inf")
    else:
        z = abs(observed - median) / spread
    relative = (observed - median) / median
    why = (
        f"{observed:g} rows vs a median of {median:g} over the previous {len(history)} "
        f"same weekdays ({relative:+.0%}, robust z {z:.1f})"
    )
    if z >= v.z and abs(relative) >= v.error_relative_change:
        return "error", why, median
    if z >= v.z and abs(relative) >= v.warn_relative_change:
        return "warn", why, median
    return "ok", why, median


def _rows_by_day(conn: psycopg.Connection, first: date, last: date) -> dict[tuple, int]:
    rows = conn.execute(
        "select source, entity, partition_date, rows_loaded from audit.partitions"
        " where partition_date between %s and %s",
        (first, last),
    ).fetchall()
    return {(s, e, d): int(n) for s, e, d, n in rows}


def _pending(conn: psycopg.Connection, day: date) -> dict[tuple, tuple[str, datetime]]:
    rows = conn.execute(
        "select source, entity, status, first_seen_at from audit.pending_partitions"
        " where partition_date = %s",
        (day,),
    ).fetchall()
    return {(s, e): (status, seen) for s, e, status, seen in rows}


def _freshness(
    e: Entity, day: date, loaded: bool, pending: tuple | None, at: datetime, x: Expectation
) -> tuple[str, str, float]:
    due = datetime.combine(day + timedelta(days=1), time(0), UTC) + timedelta(
        hours=x.freshness.due_hour
    )
    if loaded:
        return "ok", f"dt={day} complete and loaded", 0.0
    late = (at - due).total_seconds() / 3600
    seen = ""
    if pending is not None and pending[0] == "incomplete":
        seen = " (files seen, no _SUCCESS yet)"
    if late < x.freshness.warn_after_hours:
        return "ok", f"dt={day} not complete{seen}, not due until {due:%Y-%m-%d %H:%M} UTC", late
    status = "error" if late >= x.freshness.error_after_hours else "warn"
    return (
        status,
        f"dt={day} not complete{seen}: due {due:%Y-%m-%d %H:%M} UTC, {late:g} h late at "
        f"{at:%Y-%m-%d %H:%M} UTC",
        late,
    )


def _file_columns(path: Path, fmt: str) -> set[str] | None:
    """The header's columns (CSV) or the top-level keys of the first lines (JSON Lines)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as f:
            if fmt == "csv":
                import csv

                return {c.strip() for c in next(csv.reader([f.readline()]), [])}
            keys: set[str] = set()
            for i, line in enumerate(f):
                if i >= HEAD_LINES:
                    break
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    keys.update(obj)
            return keys
    except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile):
        return None


def _schema(
    conn: psycopg.Connection, e: Entity, day: date, landing: Path | None
) -> tuple[str, str, bool, float]:
    """(status, detail, holds, files at fault) of the partition's current files."""
    files = conn.execute(
        "select file_path, status, mostly_bad, error from audit.loads"
        " where source = %s and entity = %s and partition_date = %s and superseded_by is null"
        " order by file_path",
        (e.source, e.name, day),
    ).fetchall()
    rejected = [f"{p} ({err or 'rejected'})" for p, status, _, err in files if status == "rejected"]
    mostly_bad = [p for p, status, bad, _ in files if bad and status != "rejected"]
    known = set(e.column_names)
    unknown: set[str] = set()
    if landing is not None:
        for path, status, _, _ in files:
            if status == "rejected":
                continue
            cols = _file_columns(landing / path, e.file_format)
            unknown |= {c for c in cols or () if c and c not in known}
    parts = []
    if rejected:
        parts.append(f"{len(rejected)} file(s) rejected: " + "; ".join(rejected[:3]))
    if mostly_bad:
        parts.append(f"{len(mostly_bad)} file(s) mostly bad rows: " + ", ".join(mostly_bad[:3]))
    if unknown:
        parts.append("columns the contract does not know: " + ", ".join(sorted(unknown)[:10]))
    if rejected or mostly_bad:
        return "error", "; ".join(parts), True, float(len(rejected) + len(mostly_bad))
    if unknown:
        return "warn", "; ".join(parts) + " (additive change: loaded)", False, float(len(unknown))
    return "ok", "no file rejected, no unknown column", False, 0.0


def check_day(
    conn: psycopg.Connection,
    day: date,
    at: datetime,
    config: HealthConfig,
    landing: Path | None = None,
    lineage: dict[str, tuple[str, ...]] | None = None,
) -> list[Finding]:
    """Every entity's freshness, volume and schema findings for ``day``, judged at ``at``."""
    longest = max(config.expectation(e).volume.weeks for e in ENTITIES)
    rows = _rows_by_day(conn, day - timedelta(days=7 * longest), day)
    pending = _pending(conn, day)
    out: list[Finding] = []
    for e in ENTITIES:
        x = config.expectation(e)
        marts = None if lineage is None else lineage.get(f"{e.source}/{e.name}", ())
        key = (e.source, e.name, day)

        def add(check, status, detail, observed=None, expected=None, holds=None, e=e, m=marts):
            holds = config.holds(status) if holds is None else holds
            out.append(
                Finding(
                    day,
                    e.source,
                    e.name,
                    check,
                    status,
                    holds and status != "ok",
                    detail,
                    observed,
                    expected,
                    m,
                )
            )

        loaded = key in rows
        status, detail, late = _freshness(e, day, loaded, pending.get((e.source, e.name)), at, x)
        add("freshness", status, detail, observed=late)
        if loaded:
            history = [
                float(rows[(e.source, e.name, day - timedelta(days=7 * k))])
                for k in range(1, x.volume.weeks + 1)
                if (e.source, e.name, day - timedelta(days=7 * k)) in rows
            ]
            v_status, why, median = robust_volume(float(rows[key]), history, x.volume)
            add("volume", v_status, why, observed=float(rows[key]), expected=median)
            s_status, s_detail, s_holds, n = _schema(conn, e, day, landing)
            add("schema", s_status, s_detail, observed=n, holds=s_holds)
        else:
            add("volume", "ok", "not judged: the partition is not loaded", holds=False)
            add("schema", "ok", "not judged: the partition is not loaded", holds=False)
    return out


# ---- lineage --------------------------------------------------------------------------------


def manifest_path() -> Path:
    from exops.transform import dbt_var_dir

    return dbt_var_dir() / "target" / "manifest.json"


def marts_by_source(manifest: dict) -> dict[str, tuple[str, ...]]:
    """{"crm/users": (mart, ...)}: the marts (models built in schema ``marts``) reachable
    from each dbt source table through the manifest's ``child_map``."""
    nodes = manifest.get("nodes", {})
    children = manifest.get("child_map", {})
    out: dict[str, tuple[str, ...]] = {}
    for uid, src in manifest.get("sources", {}).items():
        seen: set[str] = set()
        stack = [uid]
        marts: set[str] = set()
        while stack:
            for child in children.get(stack.pop(), ()):
                if child in seen:
                    continue
                seen.add(child)
                node = nodes.get(child)
                if node is None or node.get("resource_type") != "model":
                    continue
                if node.get("schema") == "marts":
                    marts.add(node["name"])
                stack.append(child)
        out[f"{src['source_name']}/{src['name']}"] = tuple(sorted(marts))
    return out


def load_lineage(path: Path | None = None) -> dict[str, tuple[str, ...]] | None:
    """:func:`marts_by_source` of the last build's manifest; None when there is none."""
    path = path or manifest_path()
    try:
        return marts_by_source(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        log.warning("no dbt manifest at %s (%s): marts affected by sources unknown", path, exc)
        return None


# ---- running and storing --------------------------------------------------------------------


@dataclass
class HealthResult:
    as_of: date
    checked_at: datetime
    findings: list[Finding] = field(default_factory=list)

    def of_day(self, day: date) -> list[Finding]:
        return [f for f in self.findings if f.day == day]

    def problems(self, day: date | None = None) -> list[Finding]:
        return [f for f in self.findings if f.status != "ok" and (day is None or f.day == day)]

    def summary_lines(self) -> list[str]:
        lines = [f"source health of {self.as_of} (judged at {self.checked_at:%Y-%m-%d %H:%M} UTC)"]
        problems = self.problems(self.as_of)
        if not problems:
            lines.append("  every source entity complete, of usual size and known shape")
        for f in problems:
            hold = ", holds its marts' alerts" if f.holds else ""
            lines.append(f"  {f.status}: {f.source}/{f.entity} {f.check}: {f.detail}{hold}")
        return lines


def store(conn: psycopg.Connection, result: HealthResult) -> None:
    """Replace the stored findings of the days judged."""
    days = sorted({f.day for f in result.findings})
    with conn.transaction():
        conn.execute("delete from audit.source_health where day = any(%s)", (days,))
        with conn.cursor() as cur:
            cur.executemany(
                "insert into audit.source_health (day, source, entity, check_name, status,"
                " holds, detail, observed, expected, affected_marts, as_of, checked_at)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        f.day,
                        f.source,
                        f.entity,
                        f.check,
                        f.status,
                        f.holds,
                        f.detail,
                        f.observed,
                        f.expected,
                        None if f.affected_marts is None else list(f.affected_marts),
                        result.as_of,
                        result.checked_at,
                    )
                    for f in result.findings
                ],
            )


def check(
    conn: psycopg.Connection,
    as_of: date,
    config: HealthConfig | None = None,
    landing: Path | None = None,
    lineage: dict[str, tuple[str, ...]] | None = None,
    at: datetime | None = None,
) -> HealthResult:
    """Judge ``as_of`` and the ``history_days`` before it, store the findings, return them.

    ``landing`` defaults to the configured landing zone (for unknown columns), ``lineage``
    to the last build's manifest, ``at`` to :func:`check_instant`."""
    from exops.settings import default_landing_dir

    config = config or load_config()
    ensure_source_health_table(conn)
    at = at or check_instant(as_of, config)
    if landing is None:
        landing = default_landing_dir()
    if lineage is None:
        lineage = load_lineage()
    result = HealthResult(as_of, at)
    first = conn.execute("select min(partition_date) from audit.partitions").fetchone()[0]
    for k in range(config.history_days, -1, -1):
        day = as_of - timedelta(days=k)
        if first is not None and day >= first:  # nothing was owed before the first day
            result.findings += check_day(conn, day, at, config, landing, lineage)
    store(conn, result)
    for line in result.summary_lines():
        log.info(line)
    return result


def check_quietly(conn: psycopg.Connection, as_of: date) -> HealthResult | None:
    """:func:`check` for the quality gate: a failure is logged, never fails the gate (the
    publish step then finds no findings for the day and holds nothing)."""
    try:
        return check(conn, as_of)
    except Exception:  # noqa: BLE001 - source health informs publishing, it must not block it
        log.exception("source health of %s could not be checked", as_of)
        return None
