"""Robust baselines for the anomaly rules, and the known incidents they leave out.

A baseline is the median of the comparison points; its spread is the median absolute
deviation (MAD) scaled by 1.4826, which equals the standard deviation for normal data. One
outage or one spike among 8 points moves the median by at most one rank and the MAD barely,
where it would move a mean and a standard deviation enough to hide the next one (or to make
the ordinary days look like anomalies). The comparison points never include the tested day
nor the days of known incidents, declared in ``config/known_incidents.yaml``.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from exops.settings import PROJECT_ROOT

DEFAULT_INCIDENTS_PATH = PROJECT_ROOT / "config" / "known_incidents.yaml"
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Baseline:
    median: float
    spread: float  # the MAD scaled to a standard deviation
    points: int

    def robust_z(self, value: float) -> float:
        """How many spreads ``value`` is from the median (±inf off a flat series)."""
        if self.spread == 0:
            return 0.0 if value == self.median else math.copysign(math.inf, value - self.median)
        return (value - self.median) / self.spread


def mad(values: list[float]) -> float:
    """The median absolute deviation from the median (unscaled)."""
    m = statistics.median(values)
    return statistics.median(abs(v - m) for v in values)


def robust_baseline(values: list[float]) -> Baseline:
    if not values:
        raise ValueError("a baseline needs at least one point")
    return Baseline(statistics.median(values), MAD_TO_SIGMA * mad(values), len(values))


def comparison_days(
    days: list[date], day: date, window: int, weekday: bool, excluded: set[date]
) -> list[date]:
    """The ``window`` latest days before ``day`` (same weekday when ``weekday``), leaving out
    ``excluded`` (known incidents) and ``day`` itself."""
    earlier = [
        d
        for d in sorted(days)
        if d < day and d not in excluded and (not weekday or d.weekday() == day.weekday())
    ]
    return earlier[-window:]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Incident(_Strict):
    day: date
    description: str = Field(min_length=1)
    # marts whose numbers it disturbed; empty: all of them
    marts: list[str] = Field(default_factory=list)


class IncidentFile(_Strict):
    incidents: list[Incident] = Field(default_factory=list)


class IncidentFileError(ValueError):
    pass


def load_incidents(path: Path | str | None = None) -> list[Incident]:
    """The known incidents of ``path`` (default config/known_incidents.yaml; none if absent)."""
    path = Path(path) if path is not None else DEFAULT_INCIDENTS_PATH
    if not path.exists():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return IncidentFile.model_validate(data).incidents
    except yaml.YAMLError as exc:
        raise IncidentFileError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"incident #{e['loc'][1] + 1} field {'.'.join(map(str, e['loc'][2:]))!r}: {e['msg']}"
            if len(e["loc"]) > 2
            else f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in exc.errors()
        )
        raise IncidentFileError(f"{path}: {problems}") from None


def incident_days(incidents: list[Incident], mart: str) -> set[date]:
    """The days of the incidents that disturbed ``mart``."""
    return {i.day for i in incidents if not i.marts or mart in i.marts}
