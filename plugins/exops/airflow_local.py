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


def dags_test_chain(
    dag_ids: list[str],
    day: date,
    *,
    env: dict[str, str] | None = None,
    confs: dict[str, str] | None = None,
    echo=None,
) -> tuple[int, list[str]]:
    """``airflow dags test`` of each DAG in order, in one process (exops.airflow_dags_test).

    Returns the exit status and the output's last lines; ``echo`` gets each DAG's start and
    result as they happen.
    """
    from collections import deque

    from exops.airflow_dags_test import MARK

    env = airflow_env(env)
    ensure_metadata_db(env)
    cmd = [sys.executable, "-m", "exops.airflow_dags_test", day.isoformat(), *dag_ids]
    for dag_id, conf in (confs or {}).items():
        cmd += ["--conf", f"{dag_id}={conf}"]
    tail: deque[str] = deque(maxlen=60)
    with subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            if line.startswith(MARK) and echo is not None:
                news = line[len(MARK) :].strip()
                echo(f"  {news}" if ": " in news else f"airflow dags test {news} ...")
    return proc.returncode, list(tail)
