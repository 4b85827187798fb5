"""Every published mart equals an independent computation of KPIS.md, cell by cell.

A small simulated landing zone, with contract-valid edge cases added (duplicates across
partitions and files, re-sent older change-feed versions, ties on ``updated_at``, same-instant
lifecycle events, a late self-trade with an offset; see tests/verify/edge_cases.py), is
ingested and built once. Each mart is then compared with tests/verify/kpi_reference.py, a
pandas implementation written from the specification only (never from the dbt SQL), on the
mart's grain key: identical row sets, USD within a cent, rates and averages to 1e-9 relative,
nulls where the reference has nulls.
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import date
from pathlib import Path
from types import ModuleType

import pytest

from exops import transform
from exops.ingest import ingest
from exops.simulate import simulate

VERIFY = Path(__file__).resolve().parents[1] / "verify"

START = date(2026, 2, 2)
DAYS = 40
USERS = 400
SEED = 7


def _module(name: str) -> ModuleType:
    qualified = f"exops_verify_{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    spec = importlib.util.spec_from_file_location(qualified, VERIFY / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


ref = _module("kpi_reference")
edge_cases = _module("edge_cases")


@pytest.fixture(scope="module")
def reference(warehouse_url: str, tmp_path_factory: pytest.TempPathFactory):
    landing = tmp_path_factory.mktemp("marts_reference") / "landing"
    simulate(landing, USERS, DAYS, START, SEED)
    assert edge_cases.perturb(landing)
    report = ingest(landing, url=warehouse_url)
    assert not [p for p in report.partitions if p.action == "failed"]
    result = transform.build(url=warehouse_url)
    assert result.success, result.summary()
    return ref.load_context(warehouse_url)


@pytest.mark.parametrize("mart", list(ref.MARTS))
def test_mart_equals_reference(mart: str, reference, warehouse_url: str) -> None:
    expected = ref.MARTS[mart](reference)
    actual = ref.read_mart(warehouse_url, mart)
    assert len(expected) > 0 or mart in {"user_tier_transitions", "risk_alerts"}
    problems = ref.compare(mart, actual, expected)
    assert not problems, "\n".join(problems)
