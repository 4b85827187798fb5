"""Settings every exops DAG shares (light: imported while the DAG files are parsed)."""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum

START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")

DEFAULT_ARGS = {
    "owner": "data-engineering",
    "retries": int(os.environ.get("EXOPS_TASK_RETRIES", "2")),
    "retry_delay": timedelta(seconds=int(os.environ.get("EXOPS_RETRY_DELAY_SECONDS", "120"))),
    "retry_exponential_backoff": True,
}
