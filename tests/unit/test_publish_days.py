"""Which days an Asset-triggered `exops_publish` run reports: each ingest task puts its run's
day on its raw Asset event, the transform run lists the days of the raw events it consumed on
its marts event, and the publish run reports the days of its marts events. Built with
Airflow's own event types and accessors, as a running task sees them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult
from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor

from exops.assets import (
    DAY_EXTRA,
    DAYS_EXTRA,
    MARTS_ASSET_URI,
    RAW_ASSET_URIS,
    marts_asset,
    raw_asset,
)
from exops.orchestration import days_to_publish, marts_event_extra

NOW = datetime(2026, 5, 14, 1, 0, tzinfo=UTC)


def _event(name: str, uri: str, extra: dict, source_dag_id: str) -> AssetEventDagRunReferenceResult:
    return AssetEventDagRunReferenceResult(
        asset={"name": name, "uri": uri, "extra": {}},
        extra=extra,
        source_task_id="t",
        source_dag_id=source_dag_id,
        source_run_id="r",
        source_map_index=-1,
        source_aliases=[],
        timestamp=NOW,
    )


def _ingest_runs(*days: str | None) -> TriggeringAssetEventsAccessor:
    """The raw Asset events of one ingest run per day, as a transform run consumed them."""
    return TriggeringAssetEventsAccessor.build(
        _event(f"raw_{source}", uri, {DAY_EXTRA: day} if day else {}, "exops_ingest")
        for day in days
        for source, uri in RAW_ASSET_URIS.items()
    )


def _transform_runs(*extras: dict) -> TriggeringAssetEventsAccessor:
    """The marts Asset events of one transform run per extra, as a publish run consumed them."""
    return TriggeringAssetEventsAccessor.build(
        _event("marts", MARTS_ASSET_URI, extra, "exops_transform") for extra in extras
    )


def test_the_asset_helpers_name_the_dags_assets() -> None:
    assert marts_asset().uri == MARTS_ASSET_URI and marts_asset().name == "marts"
    assert {raw_asset(s).uri for s in RAW_ASSET_URIS} == set(RAW_ASSET_URIS.values())


def test_one_delivery_from_ingest_to_publish() -> None:
    extra = marts_event_extra(_ingest_runs("2026-05-13"))
    assert extra == {DAYS_EXTRA: ["2026-05-13"]}
    assert days_to_publish({"as_of": None}, _transform_runs(extra)) == ["2026-05-13"]


def test_days_delivered_together_are_each_reported_oldest_first() -> None:
    """A backfill: two ingest runs behind one transform run, and two transform runs behind
    one publish run. Every day once, none skipped."""
    first = marts_event_extra(_ingest_runs("2026-05-12", "2026-05-10"))
    assert first == {DAYS_EXTRA: ["2026-05-10", "2026-05-12"]}
    second = marts_event_extra(_ingest_runs("2026-05-11", "2026-05-12"))
    assert days_to_publish({}, _transform_runs(first, second)) == [
        "2026-05-10",
        "2026-05-11",
        "2026-05-12",
    ]


def test_the_as_of_param_wins() -> None:
    events = _transform_runs({DAYS_EXTRA: ["2026-05-13"]})
    assert days_to_publish({"as_of": "2026-05-01"}, events) == ["2026-05-01"]


@pytest.mark.parametrize(
    "events",
    [
        TriggeringAssetEventsAccessor.build([]),  # a manual run, `airflow dags test`
        _transform_runs({}),  # marts built by a transform run no delivery started
        _transform_runs({"unrelated": 1}),
    ],
    ids=["no-event", "no-days", "other-extra"],
)
def test_without_a_delivered_day_the_latest_loaded(events) -> None:
    assert days_to_publish({"as_of": None}, events) == [None]


def test_a_transform_run_no_delivery_started_passes_no_day() -> None:
    assert marts_event_extra(TriggeringAssetEventsAccessor.build([])) == {}
    assert marts_event_extra(_ingest_runs(None)) == {}
    # events of some other Asset are not deliveries
    other = TriggeringAssetEventsAccessor.build(
        [_event("elsewhere", "exops://elsewhere", {DAY_EXTRA: "2026-05-13"}, "x")]
    )
    assert marts_event_extra(other) == {}


def test_a_malformed_day_fails_loudly() -> None:
    with pytest.raises(ValueError, match="13/05/2026"):
        marts_event_extra(_ingest_runs("13/05/2026"))
    with pytest.raises(ValueError, match="yesterday"):
        days_to_publish({}, _transform_runs({DAYS_EXTRA: ["yesterday"]}))
