"""Where things are: every path and endpoint comes from the environment or these defaults."""

from __future__ import annotations

import os
from pathlib import Path

# plugins/exops/settings.py -> repository root
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def var_dir() -> Path:
    """Local state (embedded PostgreSQL, Airflow DB, reports, mail): ``EXOPS_VAR_DIR`` or ./var."""
    path = Path(os.environ.get("EXOPS_VAR_DIR", PROJECT_ROOT / "var")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def dbt_project_dir() -> Path:
    return PROJECT_ROOT / "dbt_project"


def default_landing_dir() -> Path:
    return Path(os.environ.get("EXOPS_LANDING_DIR", var_dir() / "landing")).resolve()
