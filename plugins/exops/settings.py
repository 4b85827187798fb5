"""Where things are: every path and endpoint comes from the environment or these defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
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


class SettingError(RuntimeError):
    pass


def secret(name: str, env: Mapping[str, str] | None = None) -> str:
    """A setting that may be a secret: ``NAME``, else the contents of the file ``NAME_FILE``.

    ``NAME_FILE`` is how Docker secrets (``/run/secrets/...``) reach a container without the
    value ever being in its environment; one trailing newline of the file is dropped.
    Returns "" when neither is set.
    """
    env = os.environ if env is None else env
    value = env.get(name, "")
    if value.strip():
        return value
    path = env.get(f"{name}_FILE", "").strip()
    if not path:
        return ""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SettingError(
            f"{name}_FILE={path}: cannot read it ({exc.strerror}); point it at a readable file"
        ) from None
    return text.removesuffix("\n").removesuffix("\r")
