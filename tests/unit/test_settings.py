"""Settings that may be secrets (NAME or NAME_FILE) and which URL each stage connects with."""

from __future__ import annotations

import pytest

from exops import warehouse
from exops.settings import SettingError, secret

ADMIN = "postgresql://admin:pw@db.internal:5432/exops"
LOADER = "postgresql://exops_loader:pw@db.internal:5432/exops"

URL_ENVS = (warehouse.ENV_URL, *warehouse.STAGE_URL_ENVS.values())


@pytest.fixture(autouse=True)
def no_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in URL_ENVS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)


def test_a_secret_comes_from_its_variable_before_its_file(tmp_path) -> None:
    path = tmp_path / "pw"
    path.write_text("from-file\n")
    assert secret("X_PASSWORD", {"X_PASSWORD_FILE": str(path)}) == "from-file"
    assert secret("X_PASSWORD", {"X_PASSWORD": "direct", "X_PASSWORD_FILE": str(path)}) == (
        "direct"
    )
    assert secret("X_PASSWORD", {}) == ""


def test_an_unreadable_secret_file_says_which_variable(tmp_path) -> None:
    with pytest.raises(SettingError) as exc:
        secret("X_PASSWORD", {"X_PASSWORD_FILE": str(tmp_path / "missing")})
    assert str(exc.value) == (
        f"X_PASSWORD_FILE={tmp_path / 'missing'}: cannot read it (No such file or directory);"
        " point it at a readable file"
    )


def test_a_stage_uses_its_own_url_else_the_admins(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(warehouse.ENV_URL, ADMIN)
    assert {s: warehouse.stage_url(s) for s in warehouse.STAGE_URL_ENVS} == dict.fromkeys(
        warehouse.STAGE_URL_ENVS, ADMIN
    )
    secret_file = tmp_path / "loader_url"
    secret_file.write_text(LOADER + "\n")
    monkeypatch.setenv("EXOPS_LOADER_URL_FILE", str(secret_file))
    assert warehouse.stage_url("loader") == LOADER
    assert warehouse.stage_url("transformer") == ADMIN
    assert warehouse.warehouse_url() == ADMIN


def test_a_stage_url_must_be_postgresql(monkeypatch) -> None:
    monkeypatch.setenv("EXOPS_PUBLISHER_URL", "mysql://x@y/z")
    with pytest.raises(warehouse.WarehouseError) as exc:
        warehouse.stage_url("publisher")
    assert str(exc.value) == "EXOPS_PUBLISHER_URL: must be a postgresql:// URL, got scheme 'mysql'"
    with pytest.raises(ValueError, match="unknown stage 'bi'"):
        warehouse.stage_url("bi")
