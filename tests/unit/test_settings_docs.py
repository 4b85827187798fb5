"""One settings object for every EXOPS_* variable: the repository uses no other, the docs
list exactly them, bad values are named all at once, and a task fails on one before working."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from exops import settings
from exops.settings import SettingError, Settings, load_settings, variable

ROOT = Path(__file__).resolve().parents[2]
# read by something other than exops: dbt's profile and window (exops sets them per build),
# Superset's provisioning in .venv-bi (exops bi sets them), compose, the test tooling and
# tests' names
NOT_SETTINGS = {
    "EXOPS_PG_HOST",
    "EXOPS_PG_PORT",
    "EXOPS_PG_USER",
    "EXOPS_PG_PASSWORD",
    "EXOPS_PG_DBNAME",
    "EXOPS_BI_HOME",
    "EXOPS_BI_DASHBOARDS_DIR",
    "EXOPS_BI_MARTS_DIR",
    "EXOPS_SUPERSET_IMAGE",
    "EXOPS_IMAGE",
    "EXOPS_LANDING_HOST_DIR",
    "EXOPS_WORKER_HOSTNAME",
    "EXOPS_TEST_SECRET",
    "EXOPS_FILES",
    # the change window exops hands each dbt build (EXOPS_DBT_<NAME>, ChangeWindow.dbt_env)
    "EXOPS_DBT_WINDOW_START",
    "EXOPS_DBT_WINDOW_START_WEEK",
    "EXOPS_DBT_WINDOW_START_MONTH",
    "EXOPS_DBT_SINCE_LOAD_ID",
}


def _variables_in_the_repository() -> set[str]:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    found = set()
    for name in files:
        path = ROOT / name
        if name == "uv.lock" or not path.is_file() or path.suffix in (".json", ".png", ".gz"):
            continue
        found |= set(re.findall(r"\bEXOPS_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(errors="ignore")))
    return found


def _known(name: str) -> bool:
    if name in settings.FIELDS_BY_VARIABLE or name in NOT_SETTINGS:
        return True
    if name.startswith((settings.MAIL_TO_PREFIX, settings.WEBHOOK_URL_PREFIX)) or name in (
        "EXOPS_MAIL_TO",
        "EXOPS_WEBHOOK_URL",
        "EXOPS_PG",
    ):
        return True
    base = name.removesuffix("_FILE")
    return name.endswith("_FILE") and base in settings.SECRETS


def test_every_exops_variable_in_the_repository_is_a_setting() -> None:
    unknown = sorted(v for v in _variables_in_the_repository() if not _known(v))
    assert not unknown, f"not in exops.settings.Settings (nor NOT_SETTINGS): {unknown}"


def test_the_docs_are_generated_from_the_settings() -> None:
    assert (ROOT / "docs" / "settings.md").read_text() == settings.docs_markdown(), (
        "docs/settings.md is stale: .venv/bin/python -m exops.settings > docs/settings.md"
    )
    table = (ROOT / "docs" / "settings.md").read_text()
    for name in Settings.model_fields:
        assert f"| `{variable(name)}`" in table


def test_every_bad_variable_is_named_at_once() -> None:
    env = {
        "EXOPS_DBT_THREADS": "x",
        "EXOPS_DBT_LOG_LEVEL": "verbose",
        "EXOPS_TASK_RETRIES": "-1",
        "EXOPS_LOADER_URL": "mysql://u:pw@h/db",
        "EXOPS_MAX_FUTURE_DAYS": "one",
    }
    with pytest.raises(SettingError) as exc:
        load_settings(env)
    assert str(exc.value).splitlines() == [
        "EXOPS_LOADER_URL: must be a postgresql:// URL, got scheme 'mysql'",
        "EXOPS_TASK_RETRIES: must be a whole number >= 0, got '-1'",
        "EXOPS_DBT_THREADS: must be a positive integer, got 'x'",
        "EXOPS_DBT_LOG_LEVEL: must be one of debug, info, warn, error, none, got 'verbose'",
        "EXOPS_MAX_FUTURE_DAYS: must be a whole number >= 0, got 'one'",
    ]
    assert "pw" not in str(exc.value)


def test_defaults_and_blank_values() -> None:
    s = load_settings({"EXOPS_TASK_RETRIES": " ", "EXOPS_DBT_WORK_MEM": ""})
    assert (s.task_retries, s.retry_delay_seconds, s.dbt_work_mem, s.dbt_threads) == (
        2,
        120,
        "256MB",
        None,
    )
    assert (s.ingest_timeout_minutes, s.transform_timeout_minutes) == (120, 240)
    assert (s.publish_timeout_minutes, s.max_future_days, s.quarantine_retention_days) == (
        60,
        1,
        90,
    )
    assert s.loader_queue == "exops_loader" and s.publish_deadline_hours == 30.0
    assert s.dbt_log_level == "info"


@pytest.mark.parametrize("name", sorted(settings.SECRETS))
def test_every_url_and_password_may_come_from_a_file(tmp_path, name) -> None:
    value = "postgresql://u:" + "from-a-file@db/x" if name.endswith("_URL") else "from-a-file"
    path = tmp_path / "secret"
    path.write_text(value + "\n")
    field = settings.FIELDS_BY_VARIABLE[name]
    # the SMTP password goes with a user
    env = {"EXOPS_SMTP_USER": "u"} if name == "EXOPS_SMTP_PASSWORD" else {}
    assert getattr(load_settings(env | {f"{name}_FILE": str(path)}), field) == value
    assert "from-a-file" not in repr(load_settings(env | {f"{name}_FILE": str(path)}))
    with pytest.raises(SettingError, match=f"^{name}_FILE=.*: cannot read it"):
        load_settings(env | {f"{name}_FILE": str(tmp_path / "missing")})


def test_a_task_fails_on_a_bad_setting_before_any_work(monkeypatch) -> None:
    """The DAG files parse with defaults (tests/unit/test_dag_integrity.py); the task that
    runs then fails naming the variable, before it touches the warehouse."""
    from exops.orchestration import build_marts

    monkeypatch.setenv("EXOPS_DBT_THREADS", "x")
    monkeypatch.setenv("EXOPS_WAREHOUSE_URL", "postgresql://nobody@127.0.0.1:1/unreachable")
    with pytest.raises(SettingError) as exc:
        build_marts()
    assert str(exc.value) == "EXOPS_DBT_THREADS: must be a positive integer, got 'x'"
