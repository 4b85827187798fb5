"""A local Airflow for `make run` and the tests: SQLite metadata DB and logs under var/airflow.

Everything is configured through AIRFLOW__* environment variables built here, so the same
DAG files run unchanged under a real deployment's configuration.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from exops.settings import PROJECT_ROOT, var_dir


def airflow_home() -> Path:
    home = var_dir() / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    return home


def airflow_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for the airflow CLI; values already set in ``base`` win."""
    env = dict(os.environ if base is None else base)
    home = airflow_home()
    defaults = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        # exops is an installed package; keep Airflow from importing plugins/ as plugins
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "60",
        "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP": r"exops\..*",
    }
    for key, value in defaults.items():
        env.setdefault(key, value)
    return env


def _airflow_bin() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def ensure_metadata_db(env: dict[str, str]) -> None:
    """Create or upgrade the SQLite metadata DB (quick when it is current)."""
    stamp = Path(env["AIRFLOW_HOME"]) / ".db-migrated"
    if stamp.exists() and (Path(env["AIRFLOW_HOME"]) / "airflow.db").exists():
        return
    subprocess.run(
        [_airflow_bin(), "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL
    )
    stamp.touch()


def dags_test(
    dag_id: str, day: date, *, env: dict[str, str] | None = None, conf: str | None = None
) -> subprocess.CompletedProcess:
    """Run one DAG run in-process with `airflow dags test` for the logical date ``day``."""
    env = airflow_env(env)
    ensure_metadata_db(env)
    cmd = [_airflow_bin(), "dags", "test", dag_id, day.isoformat()]
    if conf:
        cmd += ["--conf", conf]
    return subprocess.run(cmd, env=env, check=False, capture_output=True, text=True)
