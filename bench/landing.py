"""The benchmark's landing zones: simulated once per scale, cached under var/bench/.

The simulator is deterministic for the same arguments, but a run of ``days + 1`` days does
not reproduce a ``days``-day run's files (campaign plans and late arrivals depend on the
horizon), so an extra day cannot be simulated separately and appended. Instead the cache
holds one simulation of ``days + 1`` days whose last ``dt=`` partitions are held back in
``landing-<scale>-extra/``: the bench loads ``days`` days, then "lands" the extra day by
moving those partitions in, which is exactly what a daily delivery looks like.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

STAMP = ".bench-landing.json"


@dataclass(frozen=True)
class Scale:
    name: str
    users: int
    days: int
    start: str = "2026-08-01"
    seed: int = 42

    @property
    def extra_day(self) -> date:
        """The business date of the held-back day (the simulation's last day)."""
        return date.fromisoformat(self.start) + timedelta(days=self.days)


SCALES = {
    "small": Scale("small", users=20_000, days=90),
    "large": Scale("large", users=200_000, days=365),
}


def landing_dirs(root: Path, scale: Scale) -> tuple[Path, Path]:
    """(landing zone, held-back extra day) for ``scale`` under ``root`` (var/bench)."""
    return root / f"landing-{scale.name}", root / f"landing-{scale.name}-extra"


def _extra_partitions(folder: Path, day: date) -> list[Path]:
    return sorted(folder.glob(f"*/*/dt={day.isoformat()}"))


def ensure_landing(root: Path, scale: Scale, progress=None) -> tuple[Path, Path, bool]:
    """Simulate (unless the stamp matches) and hold the extra day back; True if simulated."""
    from exops.simulate import simulate

    landing, extra = landing_dirs(root, scale)
    stamp = landing / STAMP
    wanted = asdict(scale)
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        unland_extra_day(landing, extra, scale.extra_day)
        return landing, extra, False
    for folder in (landing, extra):
        shutil.rmtree(folder, ignore_errors=True)
    simulate(
        landing,
        scale.users,
        scale.days + 1,
        date.fromisoformat(scale.start),
        scale.seed,
        progress=progress,
    )
    unland_extra_day(landing, extra, scale.extra_day)
    stamp.write_text(json.dumps(wanted, indent=2) + "\n")
    return landing, extra, True


def _move_partitions(src_root: Path, dst_root: Path, day: date) -> int:
    moved = 0
    for part in _extra_partitions(src_root, day):
        target = dst_root / part.relative_to(src_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        part.rename(target)
        moved += 1
    return moved


def unland_extra_day(landing: Path, extra: Path, day: date) -> int:
    """Move the extra day's partitions out of the landing zone (idempotent)."""
    return _move_partitions(landing, extra, day)


def land_extra_day(landing: Path, extra: Path, day: date) -> int:
    """Deliver the held-back day: move its partitions into the landing zone."""
    return _move_partitions(extra, landing, day)
