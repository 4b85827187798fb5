"""What every part of the simulation shares: calendar, random streams, population, output."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from exops.simulate.catalogue import Catalogue
from exops.simulate.formats import pick_offset
from exops.simulate.population import Population
from exops.simulate.prices import Prices
from exops.simulate.scenario import Scenario
from exops.simulate.writer import LandingWriter


class Ids:
    """Sequential identifiers per prefix, unique across the whole run."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}

    def take(self, prefix: str, count: int = 1) -> int:
        first = self._next.get(prefix, 1)
        self._next[prefix] = first + count
        return first

    def new(self, prefix: str, width: int = 8) -> str:
        return f"{prefix}-{self.take(prefix):0{width}d}"


@dataclass
class Context:
    scenario: Scenario
    pop: Population
    prices: Prices
    catalogue: Catalogue
    writer: LandingWriter
    rnd: random.Random  # scalar decisions
    rng: np.random.Generator  # vectorised decisions
    ids: Ids = field(default_factory=Ids)

    def offset(self) -> int:
        return pick_offset(self.rnd)

    def day_of(self, sec: int) -> int:
        return (sec - self.scenario.epoch(0)) // 86_400

    def emit_user(self, i: int, sec: int) -> None:
        self.pop.updated_sec[i] = max(sec, int(self.pop.updated_sec[i]))
        self.writer.add("crm/users", self.day_of(sec), [self.pop.record(i, sec, self.offset())])
