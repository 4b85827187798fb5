"""exops.transform helpers that need no dbt run (the build itself: test_marts.py)."""

from __future__ import annotations

import pytest

from exops import transform


def test_profile_env_from_a_socket_url(tmp_path) -> None:
    socket_dir = tmp_path / "var" / "pg"
    env = transform.profile_env(f"postgresql://postgres:@/exops?host={socket_dir}")
    assert env == {
        "EXOPS_PG_HOST": str(socket_dir),
        "EXOPS_PG_PORT": "5432",
        "EXOPS_PG_USER": "postgres",
        "EXOPS_PG_PASSWORD": "",
        "EXOPS_PG_DBNAME": "exops",
    }


def test_profile_env_from_a_tcp_url() -> None:
    env = transform.profile_env("postgresql://etl:s3cret@db.internal:6543/warehouse")
    assert env["EXOPS_PG_HOST"] == "db.internal"
    assert env["EXOPS_PG_PORT"] == "6543"
    assert env["EXOPS_PG_USER"] == "etl"
    assert env["EXOPS_PG_PASSWORD"] == "s3cret"
    assert env["EXOPS_PG_DBNAME"] == "warehouse"


def test_bi_reader_password_is_set_only_by_init_when_given(monkeypatch) -> None:
    """The build no longer sets bi_reader's password; init does, only when asked and given
    (refused before connecting anywhere)."""
    from exops import bootstrap, roles

    assert not hasattr(transform, "ensure_bi_reader_login")
    monkeypatch.delenv("EXOPS_BI_READER_PASSWORD", raising=False)
    monkeypatch.delenv("EXOPS_BI_READER_PASSWORD_FILE", raising=False)
    with pytest.raises(roles.RoleError, match="EXOPS_BI_READER_PASSWORD .* is not set"):
        bootstrap.init_warehouse("postgresql://nowhere.invalid/x", bi_reader_password=True)


def test_headline_on_an_empty_warehouse_says_what_to_do(warehouse_url: str) -> None:
    with pytest.raises(transform.TransformError, match="run the transform"):
        transform.headline(warehouse_url)


def test_summary_lists_failures() -> None:
    result = transform.TransformResult(
        success=False, models_failed=1, failures=["model int_trades_priced: error: boom"]
    )
    text = result.summary()
    assert "FAILED" in text and "int_trades_priced" in text
