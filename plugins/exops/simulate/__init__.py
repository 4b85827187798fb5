"""Exchange simulator: writes a realistic, reproducible landing zone (shared/spec/SOURCES.md).

``simulate(out, users, days, start, seed)`` writes every source/entity/day partition with
its ``_SUCCESS`` marker and returns the rows written per ``"source/entity"``.
"""

from exops.simulate.engine import simulate

__all__ = ["simulate"]
