"""Airflow Asset identifiers shared by the producing and consuming DAGs (Airflow is imported
only inside the functions that build Asset objects, never at import time).

The chain: each ``exops_ingest`` task updates its source's raw Asset, with the day its run is
for in the event's ``extra`` (:data:`DAY_EXTRA`); ``exops_transform`` runs once all three raw
Assets have an event (Airflow's AND of a schedule list) and updates the marts Asset, whose
event lists the days of the raw events its run consumed (:data:`DAYS_EXTRA`);
``exops_publish`` runs on the marts Asset and reports those days.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from exops.contract import SOURCES

if TYPE_CHECKING:
    from airflow.sdk import Asset

# the key of a raw Asset event's extra holding the ingest run's day (YYYY-MM-DD)
DAY_EXTRA = "day"
# the key of a marts Asset event's extra listing the days of the deliveries built
DAYS_EXTRA = "days"


def raw_asset_uri(source: str) -> str:
    return f"exops://warehouse/raw/{source}"


RAW_ASSET_URIS: dict[str, str] = {s: raw_asset_uri(s) for s in SOURCES}
MARTS_ASSET_URI = "exops://warehouse/marts"


def raw_asset(source: str) -> Asset:
    """The Asset ``exops_ingest``'s ``ingest_<source>`` task updates."""
    from airflow.sdk import Asset

    return Asset(name=f"raw_{source}", uri=raw_asset_uri(source))


def marts_asset() -> Asset:
    """The Asset ``exops_transform`` updates once the marts are built."""
    from airflow.sdk import Asset

    return Asset(name="marts", uri=MARTS_ASSET_URI)
