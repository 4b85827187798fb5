"""Superset's settings for exops (``SUPERSET_CONFIG_PATH`` points here): all from the environment.

Nothing secret is written here. ``SUPERSET_SECRET_KEY`` signs sessions and encrypts the
stored warehouse password; ``exops bi start`` generates one into ``var/bi/`` when it is unset
(docker-compose requires it). The metadata store is SQLite under ``EXOPS_BI_HOME``
(``var/bi/``) unless ``SUPERSET_DATABASE_URI`` names another.
"""

import os
from pathlib import Path

_home = Path(os.environ.get("EXOPS_BI_HOME", Path(__file__).resolve().parents[1] / "var" / "bi"))

SECRET_KEY = os.environ.get("SUPERSET_SECRET_KEY", "")
if not SECRET_KEY:
    raise RuntimeError(
        "SUPERSET_SECRET_KEY is not set: start Superset with `make bi` (which generates one"
        " into var/bi/) or set it, e.g. to the output of"
        " `python -c 'import secrets; print(secrets.token_urlsafe(42))'`"
    )
SQLALCHEMY_DATABASE_URI = os.environ.get("SUPERSET_DATABASE_URI") or (
    f"sqlite:///{_home / 'superset.db'}?check_same_thread=false"
)
DATA_DIR = str(_home)

APP_NAME = "exops BI"
ROW_LIMIT = 50_000
SUPERSET_WEBSERVER_TIMEOUT = 120
