"""What the DAG tasks call: thin wrappers that turn an Airflow run into exops work, and the
failure callback every task has (data engineers are told once per run and stage).

Which day a run is for: ``exops_ingest`` runs are scheduled (or triggered), so they have a
data interval, and each task puts its run's day on its raw Asset event (``extra``). The runs
the scheduler creates from Asset events have no logical date: ``exops_transform`` needs none
(it builds what was loaded since its last build, from the warehouse's own load records) and
passes the days of the raw events it consumed on to its marts event; ``exops_publish`` reports
those days (:func:`days_to_publish`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

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


def ingest_for_interval(
    source: str, data_interval_start: datetime | date, outlet_events: Any = None
) -> dict:
    """Load every complete, new or re-delivered partition of ``source`` with dt <= the run's day
    (which is also the run's date for holding future partitions). With the task's
    ``outlet_events``, the source's raw Asset event carries the day (:data:`DAY_EXTRA`)."""
    from exops.assets import DAY_EXTRA, raw_asset
    from exops.ingest import ingest

    _ready()
    _check_publish_deadline("ingest")
    day = interval_date(data_interval_start)
    landing = default_landing_dir()
    report = ingest(landing, sources=[source], dt_to=day, today=day, progress=log.info)
    for line in report.summary_lines():
        log.info(line)
    report.raise_for_failures()
    if outlet_events is not None:
        outlet_events[raw_asset(source)].extra = {
            DAY_EXTRA: day.isoformat(),
            "partitions_loaded": len(report.loaded),
        }
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


def days_to_publish(
    params: Mapping[str, Any] | None, triggering_asset_events: Mapping[Any, Sequence] | None
) -> list[str | None]:
    """The as-of dates an ``exops_publish`` run validates and reports, oldest first.

    The ``as_of`` param when given (a backfill; `exops run --via airflow`); else, in a run the
    marts Asset triggered, the days its marts events list (:func:`marts_event_extra`), every
    one of them: two days delivered while the marts were building are built together and
    reported one by one; else ``[None]``, the latest loaded date.
    """
    from exops.assets import DAYS_EXTRA, marts_asset

    as_of = (params or {}).get("as_of")
    if as_of:
        log.info("as-of %s: the as_of param", as_of)
        return [as_of]
    events = (triggering_asset_events or {}).get(marts_asset(), ())
    days = _sorted_days(day for e in events for day in (e.extra or {}).get(DAYS_EXTRA) or ())
    if days:
        log.info("as-of %s: the day(s) of the ingest run(s) behind the marts", ", ".join(days))
        return list(days)
    log.info("as-of: the latest loaded day (no as_of param, no delivered day in Asset events)")
    return [None]


def marts_event_extra(triggering_asset_events: Mapping[Any, Sequence] | None) -> dict:
    """The marts Asset event's ``extra``: the days of the raw Asset events the
    ``exops_transform`` run consumed (none in a run not started by them)."""
    from exops.assets import DAY_EXTRA, DAYS_EXTRA, raw_asset
    from exops.contract import SOURCES

    consumed = triggering_asset_events or {}
    events = (e for source in SOURCES for e in consumed.get(raw_asset(source), ()))
    days = _sorted_days((e.extra or {}).get(DAY_EXTRA) for e in events)
    return {DAYS_EXTRA: days} if days else {}


def _sorted_days(days: Iterable[str | None]) -> list[str]:
    """Distinct ISO dates, oldest first; a malformed one raises, naming it."""
    return [d.isoformat() for d in sorted({date.fromisoformat(d) for d in days if d})]


def _as_of(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def build_marts() -> dict:
    """One coarse `dbt build` of the change window; raises (failing the task) when a model or
    test fails. In an Asset-triggered run, the marts event lists the days delivered. Each
    node's result also goes to the task's XCom ``nodes`` (before a failure is raised), for the
    per-model tasks (:func:`report_model`)."""
    from exops.transform import build

    _ready()
    result = build(progress=log.info)
    log.info(result.summary())
    _push_node_results(result.nodes)
    if not result.success:
        raise RuntimeError(result.summary())
    return {
        "models": result.models_passed,
        "tests": result.tests_passed,
        "seconds": round(result.elapsed_seconds, 1),
        "window": result.window,
        "nothing_new": result.nothing_new,
        **pass_days_to_marts_event(),
    }


def skip_model_tasks(result: dict, task_ids: Sequence[str]) -> None:
    """End the ``dbt_build`` task of a build with nothing new (dbt did not run): it succeeds
    and the model tasks are marked skipped without each starting. Raises Airflow's
    DownstreamTasksSkipped, which replaces the task's return value: pushed here first."""
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import DownstreamTasksSkipped

    get_current_context()["ti"].xcom_push(key="return_value", value=result)
    log.info("nothing new was built: the %d model tasks are skipped", len(task_ids))
    raise DownstreamTasksSkipped(tasks=list(task_ids))


NODES_XCOM = "nodes"


def _in_airflow_task() -> bool:
    """Whether this process runs an Airflow task (its DAG file imported the task SDK). Outside
    one (``exops run --via direct``), importing Airflow would configure logging anew and
    drop the handlers the run set up, its log file's among them."""
    import sys

    return "airflow.sdk" in sys.modules


def _push_node_results(nodes: Mapping[str, dict]) -> None:
    if not _in_airflow_task():
        return
    from airflow.sdk import get_current_context

    try:
        context = get_current_context()
    except RuntimeError:  # not in an Airflow task
        return
    context["ti"].xcom_push(key=NODES_XCOM, value=dict(nodes))


class ModelNotBuilt(Exception):
    """A model task's model or one of its data tests failed in the run's build."""


def report_model(name: str, unique_id: str, tests: Sequence[str]) -> None:
    """The task of one dbt model in ``exops_transform``: what the run's one ``dbt build``
    (task ``dbt_build``) did with the model and its data tests, so each is seen, with its time
    and message, as its own task. Succeeds when the model and its tests passed; fails naming
    what failed; is skipped when dbt did not run it (nothing new was loaded, or an upstream
    model failed). A staging view that a day's build leaves out (``day_build``: only a code
    change changes it) reports its data tests, which that build ran. Cleared and run again
    after its model or a test of it failed (a later try), it builds this one model and its
    tests alone (``dbt build --select``, with the change window the failed build left
    pending). What it reports goes to its log; it returns nothing (no XCom: an XCom per
    model task cost Airflow a request each, for no reader)."""
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowSkipException

    ti = get_current_context()["ti"]
    nodes = ti.xcom_pull(task_ids="dbt_build", key=NODES_XCOM) or {}
    model = nodes.get(unique_id)
    ran_tests = {t: nodes[t] for t in tests if t in nodes}
    bad_tests = {
        t: r for t, r in ran_tests.items() if r["status"] not in ("pass", "warn", "skipped")
    }
    # its own failure (the model or one of its tests), not a skip for an upstream failure: the
    # build that follows the repair brings the skipped models up to date
    failed_here = bool(bad_tests) or (
        model is not None and model["status"] not in ("success", "skipped")
    )
    if failed_here and ti.try_number > 1:
        _rebuild_model(name)
        return
    if model is None and ran_tests:
        # left out of a day's build (dbt_project/selectors.yml), its data tests ran
        log.info("model %s: not rebuilt (a view only the code changes)", name)
        _log_tests(ran_tests)
        if bad_tests:
            raise ModelNotBuilt(_bad_tests_text(name, bad_tests))
        return
    if model is None:
        raise AirflowSkipException(
            f"{name}: dbt did not run it in this build (nothing new was loaded, a day's build"
            " left it out, or the build stopped before it): see task dbt_build"
        )
    if model["status"] == "skipped":
        raise AirflowSkipException(f"{name}: dbt skipped it, a model or test upstream failed")
    log.info("model %s: %s in %.2fs %s", name, model["status"], model["seconds"], model["message"])
    _log_tests(ran_tests)
    if model["status"] != "success":
        raise ModelNotBuilt(f"model {name}: {model['status']}: {model['message']}")
    if bad_tests:
        raise ModelNotBuilt(_bad_tests_text(name, bad_tests))


def _log_tests(ran_tests: Mapping[str, dict]) -> None:
    for test, r in sorted(ran_tests.items()):
        log.info("  data test %s: %s %s", test.split(".")[2], r["status"], r["message"])


def _bad_tests_text(name: str, bad_tests: Mapping[str, dict]) -> str:
    return f"model {name}: data tests failed: " + "; ".join(
        f"{t.split('.')[2]}: {r['status']} ({r['failures'] or 0} failing rows)"
        for t, r in sorted(bad_tests.items())
    )


def _rebuild_model(name: str) -> None:
    from exops.transform import build

    _ready()
    log.info("model %s failed in the run's build: building it and its tests alone", name)
    result = build(select=name, progress=log.info)
    log.info(result.summary())
    if not result.success:
        raise ModelNotBuilt(result.summary())


def pass_days_to_marts_event() -> dict:
    """In the ``exops_transform`` task that updates the marts Asset: its event lists the days
    of the raw events the run consumed, for ``exops_publish`` (:func:`marts_event_extra`).
    Read from the running task's context, so the DAG file passes nothing (a task that takes
    over the marts outlet calls this); outside a task, nothing to pass on."""
    if not _in_airflow_task():
        return {}
    from airflow.sdk import get_current_context

    from exops.assets import marts_asset

    try:
        context = get_current_context()
    except RuntimeError:  # not in an Airflow task (a test, a script)
        return {}
    extra = marts_event_extra(context["triggering_asset_events"])
    if extra:
        context["outlet_events"][marts_asset()].extra = extra
        log.info("marts event: %s", extra)
    return extra


def validate_marts(days: Sequence[str | None]) -> list[dict]:
    """The quality gate of each day (None: the latest loaded); raises QualityGateFailed
    (failing the task) on a critical failure."""
    from exops.quality import validate

    _ready()
    _check_publish_deadline("validate")
    out = []
    for as_of in days:
        result = validate(as_of=_as_of(as_of))
        log.info(result.summary())
        out.append(
            {
                "as_of": result.as_of.isoformat(),
                "passed": result.passed,
                "warnings": len(result.warnings),
            }
        )
    return out


def publish_outputs(days: Sequence[str | None]) -> list[dict]:
    """Alerts and the daily report of each day, oldest first; raises when mail could not be
    sent so the task retries (the days already sent are not sent again)."""
    from exops.publish import PublishError, publish

    _ready()
    out = []
    for as_of in days:
        result = publish(as_of=_as_of(as_of))
        log.info(result.summary())
        if result.errors:
            raise PublishError(result.summary())
        out.append(
            {
                "as_of": result.as_of.isoformat(),
                "alerts_emailed": result.alerts_emailed,
                "report": str(result.report_path),
                "report_emailed": result.report_emailed,
            }
        )
    return out


def _check_publish_deadline(stage: str) -> None:
    from exops.notify import check_publish_deadline_quietly

    check_publish_deadline_quietly(stage)


def stage_of(task_id: str) -> str:
    """The stage a task belongs to: ingest_<source> -> ingest, dbt_build, the model tasks
    (dbt.<model>) and dbt_done -> transform."""
    if task_id.startswith("ingest"):
        return "ingest"
    if task_id.startswith("dbt"):
        return "transform"
    return task_id


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
