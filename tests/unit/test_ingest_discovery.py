"""Finding partitions: layout, filters, fingerprints."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from exops.contract import ENTITIES, entity
from exops.ingest.discovery import (
    discover,
    file_format_problem,
    fingerprint,
    select_entities,
)


def test_select_entities_by_source_and_name() -> None:
    assert select_entities(None, None) == list(ENTITIES)
    assert {e.source for e in select_entities(["crm"], None)} == {"crm"}
    chosen = select_entities(None, ["trades", "crm/users"])
    assert [(e.source, e.name) for e in chosen] == [("exchange", "trades"), ("crm", "users")]
    with pytest.raises(ValueError, match="unknown source"):
        select_entities(["erp"], None)
    with pytest.raises(ValueError, match="unknown entity"):
        select_entities(None, ["orders"])


def test_discover_partitions_and_warnings(tmp_path: Path) -> None:
    complete = tmp_path / "exchange" / "trades" / "dt=2026-01-02"
    complete.mkdir(parents=True)
    (complete / "b.csv").write_text("")
    (complete / "a.csv").write_text("")
    (complete / "_SUCCESS").write_text("")
    (complete / "sub").mkdir()
    late = tmp_path / "crm" / "users" / "dt=2026-01-03"
    late.mkdir(parents=True)
    (late / "part.jsonl").write_text("")
    (tmp_path / "crm" / "users" / "dt=2026-1-3").mkdir()
    (tmp_path / "README").write_text("")

    scan = discover(tmp_path, list(ENTITIES))
    got = [(str(p), p.complete, [f.name for f in p.files]) for p in scan.partitions]
    assert got == [
        ("crm/users dt=2026-01-03", False, ["part.jsonl"]),
        ("exchange/trades dt=2026-01-02", True, ["a.csv", "b.csv"]),
    ]
    assert scan.warnings == [
        "ignored README: not a source folder",
        "ignored crm/users/dt=2026-1-3: not a partition folder named dt=YYYY-MM-DD"
        " with a valid date",
        "ignored exchange/trades/dt=2026-01-02/sub: a folder inside a partition",
    ]
    dated = discover(tmp_path, list(ENTITIES), dt_from=date(2026, 1, 3))
    assert [str(p) for p in dated.partitions] == ["crm/users dt=2026-01-03"]


def test_fingerprint_covers_names_and_contents() -> None:
    base = fingerprint({"a.csv": "1", "b.csv": "2"})
    assert fingerprint({"b.csv": "2", "a.csv": "1"}) == base
    assert fingerprint({"a.csv": "1", "b.csv": "3"}) != base
    assert fingerprint({"a.csv": "1", "c.csv": "2"}) != base
    assert fingerprint({"a.csv": "1"}) != base


def test_file_types_per_source() -> None:
    trades, users = entity("exchange", "trades"), entity("crm", "users")
    assert file_format_problem(Path("x.csv"), trades) is None
    assert file_format_problem(Path("x.csv.gz"), trades) is None
    assert file_format_problem(Path("x.jsonl.gz"), users) is None
    assert file_format_problem(Path("x.jsonl"), trades) == (
        "unexpected file type .jsonl: exchange files are .csv or .csv.gz"
    )
    assert file_format_problem(Path("x.csv.tmp"), trades) == (
        "unexpected file type .csv.tmp: exchange files are .csv or .csv.gz"
    )
    assert file_format_problem(Path(".DS_Store"), users) == (
        "unexpected file type (none): crm files are .jsonl or .jsonl.gz"
    )
