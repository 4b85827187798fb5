"""The benchmark's landing zones: simulated once per scale, cached under var/bench/.

A scale of ``days`` days is one simulation of ``days`` days whose last two days are held
back in ``landing-<scale>-extra/``: the bench loads and fully builds the first ``days - 2``,
then "lands" the next day for the incremental build (``incremental_day``) and the last one
for the daily run (``daily_run_day``) by moving their ``dt=`` partitions in, which is
exactly what a daily delivery looks like. The simulator is deterministic, but a shorter
simulation does not reproduce a longer one's files (campaign plans and late arrivals depend
on the horizon), so held-back days cannot be simulated separately and appended.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

STAMP = ".bench-landing.json"
HELD_BACK_DAYS = 2
# bumped when the cache's layout changes, so an older landing zone is simulated again
LAYOUT = "last 2 days held back"


@dataclass(frozen=True)
class Scale:
    name: str
    users: int
    days: int  # simulated days, the two held back included
    start: str = "2026-08-01"
    seed: int = 42

    def __post_init__(self) -> None:
        if self.days <= HELD_BACK_DAYS:
            raise ValueError(
                f"scale {self.name}: days must be more than {HELD_BACK_DAYS} (got {self.days}):"
                " the last two days are held back for the incremental build and the daily run"
            )

    @property
    def loaded_days(self) -> int:
        """Days loaded and fully built before the held-back days land."""
        return self.days - HELD_BACK_DAYS

    @property
    def last_loaded_day(self) -> date:
        return date.fromisoformat(self.start) + timedelta(days=self.loaded_days - 1)

    @property
    def incremental_day(self) -> date:
        """The first held-back day: landed, then built incrementally."""
        return self.last_loaded_day + timedelta(days=1)

    @property
    def daily_run_day(self) -> date:
        """The last simulated day: landed, then taken through `exops run`."""
        return self.last_loaded_day + timedelta(days=2)

    @property
    def held_back(self) -> tuple[date, date]:
        return self.incremental_day, self.daily_run_day


SCALES = {
    "small": Scale("small", users=20_000, days=90),
    "large": Scale("large", users=200_000, days=365),
}

# "a day costs the same whatever the history": the same users, half and full history
HISTORY_USERS = 60_000
HISTORY_DAYS = (180, 360)


def history_pair(users: int | None = None, days: int | None = None) -> tuple[Scale, Scale]:
    """The two scales of the history check: ``days`` and twice ``days`` of the same users."""
    users = users or HISTORY_USERS
    short = days or HISTORY_DAYS[0]
    long = 2 * days if days else HISTORY_DAYS[1]
    return tuple(Scale(f"history_{users}x{d}", users, d) for d in (short, long))


def landing_dirs(root: Path, scale: Scale) -> tuple[Path, Path]:
    """(landing zone, held-back days) for ``scale`` under ``root`` (var/bench)."""
    return root / f"landing-{scale.name}", root / f"landing-{scale.name}-extra"


def _stamp(scale: Scale) -> dict:
    return {**asdict(scale), "layout": LAYOUT}


def _partitions(folder: Path, day: date) -> list[Path]:
    return sorted(folder.glob(f"*/*/dt={day.isoformat()}"))


def ensure_landing(root: Path, scale: Scale, progress=None) -> tuple[Path, Path, bool]:
    """Simulate (unless the stamp matches) and hold the last two days back; True if simulated."""
    from exops.simulate import simulate

    landing, extra = landing_dirs(root, scale)
    stamp = landing / STAMP
    wanted = _stamp(scale)
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        unland_days(landing, extra, scale.held_back)
        return landing, extra, False
    for folder in (landing, extra):
        shutil.rmtree(folder, ignore_errors=True)
    simulate(
        landing,
        scale.users,
        scale.days,
        date.fromisoformat(scale.start),
        scale.seed,
        progress=progress,
    )
    unland_days(landing, extra, scale.held_back)
    stamp.write_text(json.dumps(wanted, indent=2) + "\n")
    return landing, extra, True


def _move_partitions(src_root: Path, dst_root: Path, day: date) -> int:
    moved = 0
    for part in _partitions(src_root, day):
        target = dst_root / part.relative_to(src_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        part.rename(target)
        moved += 1
    return moved


def unland_days(landing: Path, extra: Path, days: tuple[date, ...]) -> int:
    """Move these days' partitions out of the landing zone (idempotent)."""
    return sum(_move_partitions(landing, extra, day) for day in days)


def land_day(landing: Path, extra: Path, day: date) -> int:
    """Deliver a held-back day: move its partitions into the landing zone."""
    return _move_partitions(extra, landing, day)
