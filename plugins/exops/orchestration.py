"""What the DAG tasks call: thin wrappers that turn an Airflow interval into exops work,
and the failure callback every task has (data engineers are told once per run and stage)."""

from __future__ import annotations

import logging
import os
from datetime import UTC, date, datetime
from pathlib import Path

from exops.settings import default_landing_dir

log = logging.getLogger(__name__)


def _ready() -> None:
    """Before a task's work: every setting validated (a bad one fails the task, named), the
    embedded warehouse initialised on first use."""
    from exops.bootstrap import ensure_embedded
    from exops.settings import load_settings

    load_settings()
    ensure_embedded()


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

    _ready()
    _check_publish_deadline("ingest")
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

    _ready()
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

    _ready()
    _check_publish_deadline("validate")
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

    _ready()
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


def _check_publish_deadline(stage: str) -> None:
    from exops.notify import check_publish_deadline_quietly

    check_publish_deadline_quietly(stage)


def stage_of(task_id: str) -> str:
    """The stage a task belongs to: ingest_<source> -> ingest, dbt_build -> transform."""
    if task_id.startswith("ingest"):
        return "ingest"
    return {"dbt_build": "transform"}.get(task_id, task_id)


def _task_log_location(ti) -> str:
    """The task's log: its URL in the Airflow UI and the file under the log folder."""
    where = []
    try:
        where.append(ti.log_url)
    except Exception:  # noqa: BLE001 - best effort: the URL needs [api] base_url
        pass
    base = os.environ.get("AIRFLOW__LOGGING__BASE_LOG_FOLDER")
    if not base:
        try:
            from airflow.configuration import conf

            base = conf.get("logging", "base_log_folder")
        except Exception:  # noqa: BLE001 - best effort
            base = None
    if base:
        map_index = getattr(ti, "map_index", -1)
        mapped = f"map_index={map_index}/" if map_index is not None and map_index >= 0 else ""
        where.append(
            str(
                Path(base)
                / f"dag_id={ti.dag_id}"
                / f"run_id={ti.run_id}"
                / f"task_id={ti.task_id}"
                / f"{mapped}attempt={getattr(ti, 'try_number', 1)}.log"
            )
        )
    return " or ".join(where) or "the Airflow task log"


def on_task_failure(context) -> None:
    """Every exops task's ``on_failure_callback`` (after its last retry): tell data engineers
    once per DAG run (its logical date, else its run id) and stage, with the error and where
    the log is."""
    from exops.notify import tell_stage_failure

    ti = context["ti"]
    logical_date = context.get("logical_date")
    tell_stage_failure(
        stage_of(ti.task_id),
        context.get("exception"),
        _task_log_location(ti),
        dag_id=ti.dag_id,
        run_id=ti.run_id,
        task_id=ti.task_id,
        run_key=logical_date.isoformat() if logical_date else None,
    )
