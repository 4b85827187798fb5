"""Every published mart equals an independent computation of KPIS.md, cell by cell.

A small simulated landing zone, with contract-valid edge cases added (duplicates across
partitions and files, re-sent older change-feed versions, ties on ``updated_at``, same-instant
lifecycle events, a late self-trade with an offset; see tests/verify/edge_cases.py), is
ingested and built as days arrive: the session's built warehouse
(tests/support/built_warehouse.py), copied for this module. Each mart is then compared with
tests/verify/kpi_reference.py, a
pandas implementation written from the specification only (never from the dbt SQL), on the
mart's grain key: identical row sets, USD within a cent, rates and averages to 1e-9 relative,
nulls where the reference has nulls.
"""

from __future__ import annotations

import pytest

import kpi_reference as ref

pytestmark = pytest.mark.built_warehouse


@pytest.fixture(scope="module")
def reference(warehouse_url: str, built_warehouse):
    assert built_warehouse.edge_cases  # the landing zone it was loaded from was perturbed
    return ref.load_context(warehouse_url)


@pytest.mark.parametrize("mart", list(ref.MARTS))
def test_mart_equals_reference(mart: str, reference, warehouse_url: str) -> None:
    expected = ref.MARTS[mart](reference)
    actual = ref.read_mart(warehouse_url, mart)
    assert len(expected) > 0 or mart in {"user_tier_transitions", "risk_alerts"}
    problems = ref.compare(mart, actual, expected)
    assert not problems, "\n".join(problems)
