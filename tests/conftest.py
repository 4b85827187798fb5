"""Shared fixtures: a real PostgreSQL database per test module.

The server is the one in ``EXOPS_WAREHOUSE_URL`` when set (CI also runs against Debian's
PostgreSQL 15), otherwise the embedded one under var/. Each module gets its own scratch
database, dropped afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from exops import warehouse

# tests/verify: the independent KPI reference and the landing-zone helpers the tests share;
# tests/support: test tooling kept out of the exops package (the local Airflow cluster)
sys.path.insert(0, str(Path(__file__).resolve().parent / "verify"))
sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))


def _with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


@pytest.fixture(scope="session")
def server_url() -> str:
    return warehouse.warehouse_url()


@pytest.fixture(scope="module")
def warehouse_url(server_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a fresh, empty database; also exported as EXOPS_WAREHOUSE_URL for the module."""
    dbname = f"exops_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'create database "{dbname}"')
    url = _with_database(server_url, dbname)
    previous = os.environ.get(warehouse.ENV_URL)
    os.environ[warehouse.ENV_URL] = url
    try:
        yield url
    finally:
        if previous is None:
            os.environ.pop(warehouse.ENV_URL, None)
        else:
            os.environ[warehouse.ENV_URL] = previous
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{dbname}" with (force)')


@pytest.fixture
def conn(warehouse_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(warehouse_url, autocommit=True) as c:
        yield c


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # tests/integration/** is integration whatever the module says
    for item in items:
        if "/tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
