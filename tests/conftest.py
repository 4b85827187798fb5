"""Shared fixtures: a real PostgreSQL database per test module.

The server is the one in ``EXOPS_WAREHOUSE_URL`` when set (CI also runs against Debian's
PostgreSQL 15), otherwise the embedded one under var/. Each module gets its own scratch
database, dropped afterwards, so tests never see each other's rows: an empty one, or, in a
module marked ``built_warehouse``, a copy of the warehouse built once per session
(tests/support/built_warehouse.py says what it holds and when to use it).

`make test` runs the suite on pytest-xdist workers (``-n``): a module runs whole on one worker
(its module-scoped fixtures are built once), the modules that copy the built warehouse share
one worker (it is built once), and the slowest modules are handed out first. Each worker has
a local state directory of its own (``EXOPS_VAR_DIR``: its embedded PostgreSQL, dbt's target
and logs, Airflow's database), so two workers never share a dbt target or a server's roles.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from exops import warehouse

# tests/verify: the independent KPI reference and the landing-zone helpers the tests share;
# tests/support: test tooling kept out of the exops package (the local Airflow cluster)
sys.path.insert(0, str(Path(__file__).resolve().parent / "verify"))
sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))

import built_warehouse as built  # noqa: E402  (found through the path above)

# the modules that take longest (measured), handed to the workers first; the others follow in
# collection order
SLOWEST_FIRST = (
    "built_warehouse",
    "test_incremental_changes",
    "test_distributed",
    "test_pipeline_airflow",
    "test_marts",
    "test_failure_alerts",
    "test_bi_superset",
    "test_source_health",
    "test_transform_window",
    "test_roles",
)


def pytest_configure(config: pytest.Config) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:  # pytest-xdist: a local state of the worker's own (the module docstring)
        base = Path(os.environ.get("EXOPS_VAR_DIR") or Path(__file__).resolve().parents[1] / "var")
        os.environ["EXOPS_VAR_DIR"] = str(base / "test-workers" / worker)


@pytest.fixture(scope="session")
def server_url() -> str:
    return warehouse.warehouse_url()


@pytest.fixture(scope="session")
def built_warehouse(server_url: str, tmp_path_factory: pytest.TempPathFactory):
    """The warehouse built once per session (a template database, dropped at the end)."""
    shared = built.build_shared(server_url, tmp_path_factory.mktemp("built_warehouse"))
    try:
        yield shared
    finally:
        built.drop_database(server_url, shared.template)


@pytest.fixture(scope="module")
def warehouse_url(server_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of the module's own database, also exported as EXOPS_WAREHOUSE_URL for the module:
    empty, or a copy of ``built_warehouse`` when the module is marked ``built_warehouse``."""
    template = None
    if request.node.get_closest_marker("built_warehouse") is not None:
        template = request.getfixturevalue("built_warehouse").template
    dbname = built.scratch_name()
    url = built.create_database(server_url, dbname, template)
    previous = os.environ.get(warehouse.ENV_URL)
    os.environ[warehouse.ENV_URL] = url
    try:
        yield url
    finally:
        if previous is None:
            os.environ.pop(warehouse.ENV_URL, None)
        else:
            os.environ[warehouse.ENV_URL] = previous
        built.drop_database(server_url, dbname)


@pytest.fixture
def conn(warehouse_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(warehouse_url, autocommit=True) as c:
        yield c


def pytest_unconfigure(config: pytest.Config) -> None:
    # pgserver logs its clean-up (info) from an atexit hook, after pytest has closed the
    # streams the root handlers write to: each process then printed "--- Logging error ---"
    # tracebacks at the end of the run
    logging.getLogger("pgserver").propagate = False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        # tests/integration/** is integration whatever the module says
        if "/tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    built = _built_warehouse_modules()
    items.sort(key=lambda item: rank.get(_group(item.nodeid, built), len(rank)))  # stable


def _built_warehouse_modules() -> frozenset[str]:
    """The modules marked ``built_warehouse`` (read from their source: pytest-xdist's
    controller schedules by node id, without the items or their marks)."""
    here = Path(__file__).resolve().parent
    return frozenset(
        p.stem
        for p in here.glob("*/test_*.py")
        if "pytest.mark.built_warehouse" in p.read_text(encoding="utf-8")
    )


def _group(nodeid: str, built: frozenset[str] | None = None) -> str:
    """A worker's unit of work: the module, or all the modules copying the built warehouse."""
    module = Path(nodeid.split("::", 1)[0]).stem
    built = _built_warehouse_modules() if built is None else built
    return "built_warehouse" if module in built else module


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """pytest-xdist: a module per unit of work, the built-warehouse modules one unit (its own
    ``loadgroup`` renames node ids, which pytest 9 no longer lets it do)."""
    from xdist.scheduler import LoadScopeScheduling

    built = _built_warehouse_modules()

    class ModuleGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid, built)

    return ModuleGroups(config, log)
