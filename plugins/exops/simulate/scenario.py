"""The story's calendar: on which simulated day each scripted happening falls.

Everything is placed at a fraction of the window so that a short test run and a long
production-sized run tell the same story.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from exops.simulate.formats import epoch_day

SPIKE_MIN_HISTORY = 14  # the volume-spike rule needs 14 previous days of the product
MID_WINDOW_MIN_DAYS = 10  # below this, listings/delistings inside the window have no room


@dataclass(frozen=True)
class Scenario:
    start: date
    days: int
    seed: int

    def at(self, frac: float) -> int:
        """Day index at ``frac`` of the window."""
        return min(self.days - 1, max(0, int(frac * (self.days - 1) + 0.5)))

    def epoch(self, day: int) -> int:
        return epoch_day(self.start) + day * 86_400

    def date_of(self, day: int) -> date:
        return self.start + timedelta(days=day)

    @property
    def has_mid_window_events(self) -> bool:
        return self.days >= MID_WINDOW_MIN_DAYS

    @property
    def incident_day(self) -> int:
        """A matching-engine outage: fewer trades, many tickets, bad surveys."""
        return self.at(0.55)

    @property
    def spike_day(self) -> int | None:
        day = max(SPIKE_MIN_HISTORY, self.at(0.8))
        return day if day < self.days else None
