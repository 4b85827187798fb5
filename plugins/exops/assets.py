"""Airflow Asset identifiers shared by the producing and consuming DAGs (no Airflow import)."""

from __future__ import annotations

from exops.contract import SOURCES


def raw_asset_uri(source: str) -> str:
    return f"exops://warehouse/raw/{source}"


RAW_ASSET_URIS: dict[str, str] = {s: raw_asset_uri(s) for s in SOURCES}
MARTS_ASSET_URI = "exops://warehouse/marts"
