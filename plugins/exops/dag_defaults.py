"""Settings every exops DAG shares (light: imported while the DAG files are parsed).

Nothing here may fail while a DAG file is parsed: a malformed setting falls back to its
default with a warning in the parse log (:func:`exops.settings.at_parse_time`), it never
turns into an import error; the tasks then fail with a message naming it.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum

from exops.orchestration import on_task_failure
from exops.settings import Settings, at_parse_time

START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")

# how long one task of each stage may run before Airflow fails it (then retries it)
TIMEOUT_MINUTES = {
    stage: Settings.model_fields[f"{stage}_timeout_minutes"].default
    for stage in ("ingest", "transform", "publish")
}


def task_timeout(stage: str) -> timedelta:
    """``execution_timeout`` of a stage's tasks: EXOPS_<STAGE>_TIMEOUT_MINUTES or a default."""
    return timedelta(minutes=at_parse_time(f"{stage}_timeout_minutes"))


# the Celery queue of each stage's tasks: one worker per stage, holding only its role's URL
STAGE_QUEUES = {
    "loader": "exops_loader",
    "transformer": "exops_transformer",
    "publisher": "exops_publisher",
}


def stage_queue(stage: str) -> str:
    """The queue of ``stage``'s tasks: EXOPS_<STAGE>_QUEUE or ``exops_<stage>``."""
    return at_parse_time(f"{stage}_queue")


DEFAULT_ARGS = {
    "owner": "data-engineering",
    "retries": at_parse_time("task_retries"),
    "retry_delay": timedelta(seconds=at_parse_time("retry_delay_seconds")),
    "retry_exponential_backoff": True,
    "execution_timeout": timedelta(minutes=max(TIMEOUT_MINUTES.values())),
    # data engineers get one email per DAG run and stage (email_on_failure is deprecated)
    "on_failure_callback": on_task_failure,
}
