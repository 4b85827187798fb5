"""The run's date, and how far ahead of it a partition may be dated.

A partition dated later than the run's date plus ``EXOPS_MAX_FUTURE_DAYS`` (default 1) is
held as future: not loaded, no effect on the as-of date, loaded by the first run on or after
its day. The run's date is the ``today`` an entry point passes (``exops ingest --today``, the
DAG's logical date), else ``EXOPS_TODAY``, else the clock (UTC).

A landing zone written by ``exops simulate`` records its own clock
(:data:`exops.contract.LANDING_CLOCK`); ingestion itself never reads it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from exops.settings import SettingError, Settings, load_settings


class ClockError(ValueError):
    pass


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingError as exc:
        raise ClockError(str(exc)) from None


def run_date(today: date | None = None) -> date:
    """``today``, else EXOPS_TODAY (YYYY-MM-DD), else the UTC clock's date."""
    if today is not None:
        return today
    return _settings().today or datetime.now(UTC).date()


def max_future_days() -> int:
    """EXOPS_MAX_FUTURE_DAYS: how many days after the run's date a partition may be dated."""
    return _settings().max_future_days


def latest_allowed(today: date | None = None) -> date:
    """The latest partition date a run for ``today`` loads."""
    return run_date(today) + timedelta(days=max_future_days())
