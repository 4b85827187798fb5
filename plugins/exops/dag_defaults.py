"""Settings every exops DAG shares (light: imported while the DAG files are parsed).

Nothing here may fail while a DAG file is parsed: a malformed setting falls back to its
default with a warning in the parse log, it never turns into an import error.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

import pendulum

from exops.orchestration import on_task_failure

log = logging.getLogger(__name__)

START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")

# how long one task of each stage may run before Airflow fails it (then retries it)
TIMEOUT_MINUTES = {"ingest": 120, "transform": 240, "publish": 60}


def env_int(name: str, default: int, minimum: int = 0) -> int:
    """An integer setting from the environment, or ``default`` when unset or malformed."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        log.warning("%s=%r is not a whole number >= %d; using %d", name, value, minimum, default)
        return default
    return number


def task_timeout(stage: str) -> timedelta:
    """``execution_timeout`` of a stage's tasks: EXOPS_<STAGE>_TIMEOUT_MINUTES or a default."""
    minutes = env_int(f"EXOPS_{stage.upper()}_TIMEOUT_MINUTES", TIMEOUT_MINUTES[stage], 1)
    return timedelta(minutes=minutes)


# the Celery queue of each stage's tasks: one worker per stage, holding only its role's URL
STAGE_QUEUES = {
    "loader": "exops_loader",
    "transformer": "exops_transformer",
    "publisher": "exops_publisher",
}


def stage_queue(stage: str) -> str:
    """The queue of ``stage``'s tasks: EXOPS_<STAGE>_QUEUE or ``exops_<stage>``."""
    return os.environ.get(f"EXOPS_{stage.upper()}_QUEUE", "").strip() or STAGE_QUEUES[stage]


DEFAULT_ARGS = {
    "owner": "data-engineering",
    "retries": env_int("EXOPS_TASK_RETRIES", 2),
    "retry_delay": timedelta(seconds=env_int("EXOPS_RETRY_DELAY_SECONDS", 120)),
    "retry_exponential_backoff": True,
    "execution_timeout": timedelta(minutes=max(TIMEOUT_MINUTES.values())),
    # data engineers get one email per DAG run and stage (email_on_failure is deprecated)
    "on_failure_callback": on_task_failure,
}
