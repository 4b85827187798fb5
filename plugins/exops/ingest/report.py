"""What an ingest run did, per partition and in total."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from .files import FileOutcome

Action = Literal["loaded", "replaced", "unchanged", "incomplete", "future", "failed"]


class IngestError(RuntimeError):
    """Some partitions could not be loaded for a non-data reason (e.g. a database error)."""


@dataclass(frozen=True)
class FileResult:
    path: str  # relative to the landing root
    status: str  # loaded / empty / rejected
    rows_in_file: int | None
    rows_loaded: int
    rows_quarantined: int
    error: str | None = None
    mostly_bad: bool = False  # more than half of its rows quarantined


@dataclass
class PartitionResult:
    source: str
    entity: str
    dt: date
    action: Action
    files: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rejected_files: list[FileResult] = field(default_factory=list)
    file_results: list[FileResult] = field(default_factory=list)
    load_id: int | None = None
    error: str | None = None  # why the partition failed (action "failed")

    @property
    def name(self) -> str:
        return f"{self.source}/{self.entity} dt={self.dt.isoformat()}"

    def add(self, path: str, outcome: FileOutcome) -> None:
        """What became of one file of this partition."""
        result = FileResult(
            path,
            outcome.status,
            outcome.rows_in_file,
            outcome.rows_loaded,
            outcome.rows_quarantined,
            outcome.error,
            outcome.mostly_bad,
        )
        self.file_results.append(result)
        if outcome.status == "rejected":
            self.rejected_files.append(result)

    def describe(self) -> str:
        if self.action == "incomplete":
            return f"{self.name}: incomplete, no _SUCCESS yet ({self.files} files): not loaded"
        if self.action == "unchanged":
            return f"{self.name}: unchanged"
        if self.action == "future":
            return f"{self.name}: dated after the run's date and its allowed lead: held as future"
        if self.action == "failed":
            return f"{self.name}: FAILED: {self.error}"
        text = (
            f"{self.name}: {self.action} {self.files} file(s), {self.rows_loaded} rows,"
            f" {self.rows_quarantined} quarantined"
        )
        if self.rejected_files:
            text += f", {len(self.rejected_files)} file(s) rejected"
        return text


@dataclass
class IngestReport:
    landing: str
    partitions: list[PartitionResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    today: date | None = None  # the run's date
    quarantine_purged: int = 0  # audit.quarantine rows past their retention, deleted

    def with_action(self, *actions: Action) -> list[PartitionResult]:
        return [p for p in self.partitions if p.action in actions]

    @property
    def loaded(self) -> list[PartitionResult]:
        """Partitions loaded by this run, first loads and re-deliveries."""
        return self.with_action("loaded", "replaced")

    @property
    def incomplete(self) -> list[PartitionResult]:
        return self.with_action("incomplete")

    @property
    def future(self) -> list[PartitionResult]:
        return self.with_action("future")

    @property
    def failed(self) -> list[PartitionResult]:
        return self.with_action("failed")

    @property
    def mostly_bad_files(self) -> list[FileResult]:
        """Files of this run's loads with more than half of their rows quarantined."""
        return [f for p in self.loaded for f in p.file_results if f.mostly_bad]

    @property
    def rows_loaded(self) -> int:
        return sum(p.rows_loaded for p in self.loaded)

    @property
    def rows_quarantined(self) -> int:
        return sum(p.rows_quarantined for p in self.loaded)

    @property
    def rejected_files(self) -> list[FileResult]:
        return [f for p in self.loaded for f in p.rejected_files]

    @property
    def ok(self) -> bool:
        """No partition failed for a non-data reason (bad data never makes a run fail)."""
        return not self.failed

    def raise_for_failures(self) -> None:
        if self.failed:
            names = "; ".join(f"{p.name}: {p.error}" for p in self.failed)
            raise IngestError(f"{len(self.failed)} partition(s) failed to load: {names}")

    def summary_lines(self) -> list[str]:
        lines = [p.describe() for p in self.partitions if p.action != "unchanged"]
        for p in self.loaded:
            lines += [f"  rejected {f.path}: {f.error}" for f in p.rejected_files]
        lines += mostly_bad_lines(self.mostly_bad_files)
        lines += [f"warning: {w}" for w in self.warnings]
        counts = {a: len(self.with_action(a)) for a in ("loaded", "replaced", "unchanged")}
        lines.append(
            f"ingest {self.landing}: {counts['loaded']} partition(s) loaded,"
            f" {counts['replaced']} replaced, {counts['unchanged']} unchanged,"
            f" {len(self.incomplete)} incomplete, {len(self.future)} future,"
            f" {len(self.failed)} failed;"
            f" {self.rows_loaded} rows loaded, {self.rows_quarantined} quarantined,"
            f" {len(self.rejected_files)} file(s) rejected in {self.seconds:.1f}s"
        )
        return lines


def mostly_bad_lines(files: list[FileResult]) -> list[str]:
    return [
        f"mostly bad: {f.path}: {f.rows_quarantined:,} of {f.rows_in_file:,} rows quarantined"
        for f in files
    ]
