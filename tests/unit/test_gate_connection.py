"""The quality gate's GX sessions: the warehouse URL for SQLAlchemy, with the transformer's
session settings, and the URL's own settings kept (after them, so they win)."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from exops.quality.gate import sqlalchemy_url


def test_the_session_options_reach_the_url() -> None:
    url = make_url(sqlalchemy_url("postgresql://ops@db:5432/wh", "-c jit=off -c work_mem=64MB"))
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.host, url.port, url.database) == ("ops", "db", 5432, "wh")
    assert url.query == {"options": "-c jit=off -c work_mem=64MB"}


def test_a_socket_directory_and_the_urls_own_options_are_kept() -> None:
    url = make_url(
        sqlalchemy_url(
            "postgresql://ops:p%40ss@/wh?host=/run/pg&options=-c%20work_mem%3D1GB&sslmode=disable",
            "-c jit=off -c work_mem=64MB",
        )
    )
    assert url.password == "p@ss"
    assert url.query["host"] == "/run/pg"
    assert url.query["sslmode"] == "disable"
    # the URL's own setting comes last: PostgreSQL applies the last of a repeated -c
    assert url.query["options"] == "-c jit=off -c work_mem=64MB -c work_mem=1GB"


def test_without_options_the_url_is_unchanged() -> None:
    assert sqlalchemy_url("postgresql://ops@db/wh?sslmode=require") == (
        "postgresql+psycopg://ops@db/wh?sslmode=require"
    )
