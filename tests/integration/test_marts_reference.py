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

from datetime import date

import pytest

from exops import transform
from exops.ingest import ingest
from exops.simulate import simulate

import edge_cases
import kpi_reference as ref

START = date(2026, 2, 2)
DAYS = 40
USERS = 400
SEED = 7


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
