"""Landing-zone writer: one file plus ``_SUCCESS`` per source/entity/day, with late arrival.

Records are handed over with the UTC day of their own timestamp. A small share of
append-only and change-feed records is held back and delivered 1-3 days later (never past
the last simulated day); only those few days of late records are kept in memory.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

from exops.contract import ENTITIES, Entity

LATE_SHARE = 0.02
MAX_LATE_DAYS = 3


class LandingWriter:
    def __init__(self, out: Path, scenario_dates: list[str], rnd: random.Random) -> None:
        self._out = out
        self._dates = scenario_dates
        self._rnd = rnd
        self._entities = {self.key(e): e for e in ENTITIES}
        self._pending: dict[str, dict[int, list[Any]]] = {k: {} for k in self._entities}
        self.counts: dict[str, int] = {k: 0 for k in self._entities}

    @staticmethod
    def key(e: Entity) -> str:
        return f"{e.source}/{e.name}"

    def add(self, key: str, day: int, rows: list[Any]) -> None:
        """Queue rows whose own timestamp falls on ``day``: CSV tuples or JSON dicts."""
        if not rows:
            return
        e = self._entities[key]
        if e.file_format == "jsonl":
            rows = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in rows]
        pending = self._pending[key]
        last_day = len(self._dates) - 1
        if e.kind in ("append", "change_feed") and day < last_day:
            draw, on_time = self._rnd.random, []
            for row in rows:
                if draw() < LATE_SHARE:
                    target = min(day + self._rnd.randint(1, MAX_LATE_DAYS), last_day)
                    pending.setdefault(target, []).append(row)
                else:
                    on_time.append(row)
            rows = on_time
        pending.setdefault(day, []).extend(rows)

    def flush(self, day: int) -> None:
        """Write every entity's partition for ``day``, then its ``_SUCCESS`` marker."""
        for e in ENTITIES:
            key = self.key(e)
            rows = self._pending[key].pop(day, [])
            folder = self._out / e.source / e.name / f"dt={self._dates[day]}"
            folder.mkdir(parents=True, exist_ok=True)
            if e.file_format == "csv":
                with open(folder / "part-00000.csv", "w", encoding="utf-8", newline="") as f:
                    w = csv.writer(f)
                    w.writerow(e.column_names)
                    w.writerows(rows)
            else:
                with open(folder / "part-00000.jsonl", "w", encoding="utf-8", newline="\n") as f:
                    f.writelines(line + "\n" for line in rows)
            (folder / "_SUCCESS").write_bytes(b"")
            self.counts[key] += len(rows)
