"""Scratch databases for the tests, and the one built warehouse the read-only modules share.

A dbt build costs tens of seconds, most of it fixed cost. Modules that only read what a
build made (and modules that change a few rows and put them back) do not each simulate,
ingest and build their own: :func:`build_shared` runs the daily chain once per test session
into a template database, and each such module gets its own copy of it
(``CREATE DATABASE ... TEMPLATE``: a file copy, a second or two). A module asks for the copy
with ``pytestmark = pytest.mark.built_warehouse`` (see tests/conftest.py): its
``warehouse_url`` is then the copy instead of an empty database, and the fixture
``built_warehouse`` (a :class:`Built`) says what is in it.

What is in it (:data:`SCENARIO`): 2,000 simulated users over 40 days, with the edge cases of
tests/verify/edge_cases.py added to the landing zone; the warehouse initialised as a
deployment does (``exops warehouse init``, bi_reader with a password); every day but the
last ingested, built and validated (the first validation: all history), then the last day
ingested, built and validated (a daily run). A module that needs another history (planted
changes, failures, other roles) keeps building its own.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class Scenario:
    users: int
    days: int
    start: date
    seed: int

    @property
    def last(self) -> date:
        return self.start + timedelta(days=self.days - 1)


SCENARIO = Scenario(users=2000, days=40, start=date(2026, 1, 5), seed=20260213)


@dataclass(frozen=True)
class Built:
    """The shared warehouse: its scenario, the template's name, what its chain returned."""

    scenario: Scenario
    template: str
    landing: Path  # the perturbed landing zone it was loaded from: read it, never change it
    edge_cases: list[str]
    before: object  # exops.quality.ValidationResult of the first validation (last day out)
    daily: object  # ValidationResult of the daily validation of the last day
    bi_reader_password: str  # bi_reader's password when the template was built


def with_database(url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{dbname}"))


def scratch_name(prefix: str = "exops_test") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def create_database(server_url: str, name: str, template: str | None = None) -> str:
    """Create database ``name`` (a copy of ``template`` when given); returns its URL."""
    statement = sql.SQL("create database {}").format(sql.Identifier(name))
    if template is not None:
        statement += sql.SQL(" template {}").format(sql.Identifier(template))
    with psycopg.connect(server_url, autocommit=True) as admin:
        for attempt in range(50):
            if template is not None:
                # a copy needs the template to itself; nothing but a copy ever connects to
                # it, but a backend that just closed may still be exiting
                admin.execute(
                    "select pg_terminate_backend(pid) from pg_stat_activity"
                    " where datname = %s and pid <> pg_backend_pid()",
                    (template,),
                )
            try:
                admin.execute(statement)
                break
            except psycopg.errors.ObjectInUse:
                if attempt == 49:
                    raise
                time.sleep(0.2)
    return with_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as admin:
        db = sql.Identifier(name)
        if admin.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
            admin.execute(sql.SQL("alter database {} is_template false").format(db))
        admin.execute(sql.SQL("drop database if exists {} with (force)").format(db))


def build_shared(server_url: str, root: Path) -> Built:
    """Simulate, perturb, init, then the chain in two days' steps, into a new template."""
    from test_publish_support import mail_environment

    from exops import bootstrap, transform
    from exops.ingest import ingest
    from exops.quality import validate
    from exops.simulate import simulate

    import edge_cases

    s = SCENARIO
    landing = root / "landing"
    simulate(landing, s.users, s.days, s.start, s.seed)
    planted = edge_cases.perturb(landing)
    assert planted
    name = scratch_name("exops_built")
    url = create_database(server_url, name)
    password = secrets.token_urlsafe(16)
    previous = {k: os.environ.get(k) for k in ("EXOPS_BI_READER_PASSWORD",)}
    os.environ["EXOPS_BI_READER_PASSWORD"] = password
    try:
        bootstrap.init_warehouse(url, bi_reader_password=True)
        # the landing zone's own clock: nothing it holds is in the future or past retention
        today = s.last + timedelta(days=1)
        with mail_environment(root / "var", {"data_eng": "de@platform.test"}):
            first = ingest(landing, url=url, dt_to=s.last - timedelta(days=1), today=today)
            assert not [p for p in first.partitions if p.action == "failed"]
            build = transform.build(url)
            assert build.success, build.summary()
            before = validate(url)
            second = ingest(landing, url=url, today=today)
            assert not [p for p in second.partitions if p.action == "failed"]
            build = transform.build(url)
            assert build.success, build.summary()
            daily = validate(url)
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    with psycopg.connect(server_url, autocommit=True) as admin:
        # a template nobody connects to by mistake: copies only
        admin.execute(sql.SQL("alter database {} is_template true").format(sql.Identifier(name)))
    return Built(s, name, landing, planted, before, daily, password)
