"""What the DAG tasks call: thin wrappers that turn an Airflow interval into exops work."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

from exops.settings import default_landing_dir

log = logging.getLogger(__name__)


def interval_date(data_interval_start: datetime | date) -> date:
    """The business date (UTC) a daily run is for."""
    if isinstance(data_interval_start, datetime):
        if data_interval_start.tzinfo is not None:
            data_interval_start = data_interval_start.astimezone(UTC)
        return data_interval_start.date()
    return data_interval_start


def ingest_for_interval(source: str, data_interval_start: datetime | date) -> dict:
    """Load every complete, new or re-delivered partition of ``source`` with dt <= the run's day
    (which is also the run's date for holding future partitions)."""
    from exops.ingest import ingest

    day = interval_date(data_interval_start)
    landing = default_landing_dir()
    report = ingest(landing, sources=[source], dt_to=day, today=day, progress=log.info)
    for line in report.summary_lines():
        log.info(line)
    report.raise_for_failures()
    return {
        "day": day.isoformat(),
        "partitions_loaded": len(report.loaded),
        "partitions_incomplete": len(report.incomplete),
        "partitions_future": len(report.future),
        "files_mostly_bad": len(report.mostly_bad_files),
        "rows_loaded": report.rows_loaded,
        "rows_quarantined": report.rows_quarantined,
        "files_rejected": len(report.rejected_files),
    }


def _as_of(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def build_marts() -> dict:
    """One coarse `dbt build` of the change window; raises (failing the task) when a model or
    test fails."""
    from exops.transform import build

    result = build(progress=log.info)
    log.info(result.summary())
    if not result.success:
        raise RuntimeError(result.summary())
    return {
        "models": result.models_passed,
        "tests": result.tests_passed,
        "seconds": round(result.elapsed_seconds, 1),
        "window": result.window,
    }


def validate_marts(as_of: str | None) -> dict:
    """The quality gate; raises QualityGateFailed (failing the task) on a critical failure."""
    from exops.quality import validate

    result = validate(as_of=_as_of(as_of))
    log.info(result.summary())
    return {
        "as_of": result.as_of.isoformat(),
        "passed": result.passed,
        "warnings": len(result.warnings),
    }


def publish_outputs(as_of: str | None) -> dict:
    """Alerts and the daily report; raises when mail could not be sent so the task retries."""
    from exops.publish import PublishError, publish

    result = publish(as_of=_as_of(as_of))
    log.info(result.summary())
    if result.errors:
        raise PublishError(result.summary())
    return {
        "as_of": result.as_of.isoformat(),
        "alerts_emailed": result.alerts_emailed,
        "report": str(result.report_path),
        "report_emailed": result.report_emailed,
    }
