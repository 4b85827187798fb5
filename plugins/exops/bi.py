"""``exops bi start|stop``: Apache Superset on the warehouse's read-only role (``make bi``).

Superset pins pandas < 2.2 and SQLAlchemy < 2, so it lives in its own environment,
``.venv-bi`` (``bi/pyproject.toml``, ``bi/uv.lock``), and this module only drives it:

1. works out bi_reader's URL (``EXOPS_BI_READER_URL``, else the warehouse's host and database
   as bi_reader with ``EXOPS_BI_READER_PASSWORD``; on the embedded warehouse its Unix socket,
   which needs no password) and checks that the marts are there to read;
2. runs ``python -m exops_bi.provision`` in ``.venv-bi``: metadata store migrated, admin,
   the bi_reader connection, a dataset per mart, the dashboards of ``bi/dashboards/``;
3. starts gunicorn on 127.0.0.1 (``EXOPS_BI_PORT``, 8088) in its own session, its pid and
   log under ``var/bi/``, and waits until ``/health`` answers.

Secrets come from the environment: ``EXOPS_BI_ADMIN_PASSWORD`` (the admin's login,
``EXOPS_BI_ADMIN_USER``, default ``admin``) and ``SUPERSET_SECRET_KEY``; each one unset is
generated once into ``var/bi/`` (mode 0600) and reused, so the login survives a restart.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg

from exops import warehouse
from exops.settings import PROJECT_ROOT, SettingError, secret, setting, var_dir

HOST = "127.0.0.1"
DEFAULT_PORT = 8088
BI_VENV = PROJECT_ROOT / ".venv-bi"
DASHBOARD_SLUG = "exops-daily-kpis"
START_TIMEOUT_SECONDS = 180
BUILD_HINT = (
    "build them with `make run` (or a small one: `.venv/bin/exops run --users 2000 --days 40`)"
)


class BIError(RuntimeError):
    pass


@dataclass(frozen=True)
class Started:
    url: str
    dashboard_url: str
    admin_user: str
    admin_password: str
    password_generated: bool
    reader_url: str
    as_of: date
    provisioned: dict
    already_running: bool


def bi_home() -> Path:
    path = var_dir() / "bi"
    path.mkdir(parents=True, exist_ok=True)
    return path


def port() -> int:
    """``EXOPS_BI_PORT`` (exops.settings), default 8088."""
    try:
        return setting("bi_port") or DEFAULT_PORT
    except SettingError as exc:
        raise BIError(str(exc)) from None


def _secret(name: str) -> str:
    try:
        return secret(name).strip()
    except SettingError as exc:
        raise BIError(str(exc)) from None


def bi_reader_url() -> str:
    """bi_reader's postgresql:// URL (:func:`exops.warehouse.bi_reader_url`), the embedded
    warehouse initialised first when no warehouse is configured."""
    try:
        if not _secret("EXOPS_BI_READER_URL") and not _secret(warehouse.ENV_URL):
            # the embedded warehouse: its roles exist once init ran there; the socket is trusted
            from exops.bootstrap import ensure_embedded

            ensure_embedded()
        return warehouse.bi_reader_url()
    except (SettingError, warehouse.WarehouseError) as exc:
        raise BIError(str(exc)) from None


def check_marts(url: str) -> date:
    """The as-of date bi_reader sees in marts.exchange_daily_kpis; says how to build marts."""
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            as_of = conn.execute("select max(activity_date) from marts.exchange_daily_kpis")
            as_of = as_of.fetchone()[0]
    except psycopg.errors.UndefinedTable:
        raise BIError(f"the warehouse has no marts yet: {BUILD_HINT}") from None
    except psycopg.errors.InsufficientPrivilege as exc:
        raise BIError(
            f"bi_reader may not read the marts ({exc.diag.message_primary}): run"
            " `exops warehouse init` as the warehouse's admin"
        ) from None
    except psycopg.OperationalError as exc:
        raise BIError(
            f"cannot connect as bi_reader to {warehouse.describe(url)}: {exc}".rstrip()
            + "\nSet EXOPS_BI_READER_PASSWORD and run `exops warehouse init"
            " --bi-reader-password-from-env` as the admin (or set EXOPS_BI_READER_URL)."
        ) from None
    if as_of is None:
        raise BIError(f"marts.exchange_daily_kpis is empty: {BUILD_HINT}")
    return as_of


def _kept_secret(env: str, path: Path) -> tuple[str, bool]:
    """``env``'s value, else the one generated into ``path`` (created once, mode 0600)."""
    value = _secret(env)
    if value:
        return value, False
    if path.exists():
        return path.read_text().strip(), True
    value = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value, True


def _bi_env(reader_url: str, admin_user: str, admin_password: str) -> dict[str, str]:
    secret_key, _ = _kept_secret("SUPERSET_SECRET_KEY", bi_home() / "secret-key")
    env = dict(os.environ)
    env.update(
        {
            "SUPERSET_CONFIG_PATH": str(PROJECT_ROOT / "bi" / "superset_config.py"),
            "SUPERSET_SECRET_KEY": secret_key,
            "EXOPS_BI_HOME": str(bi_home()),
            "EXOPS_BI_READER_URL": reader_url,
            "EXOPS_BI_ADMIN_USER": admin_user,
            "EXOPS_BI_ADMIN_PASSWORD": admin_password,
            "PYTHONPATH": str(PROJECT_ROOT / "bi"),
            "FLASK_APP": "superset",
        }
    )
    return env


def _require_venv() -> None:
    if not (BI_VENV / "bin" / "gunicorn").exists():
        raise BIError(f"Superset is not installed in {BI_VENV}: run `make bi-install`")


def _pid_file() -> Path:
    return bi_home() / "superset.pid"


def running_pid() -> int | None:
    """The pid of the Superset this checkout started, if it still runs."""
    try:
        pid = int(_pid_file().read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    # a stale pid file must not make us signal whatever process reuses the number
    return pid if b"gunicorn" in cmdline and b"superset" in cmdline else None


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _port_taken(p: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((HOST, p)) == 0


def provision(env: dict[str, str]) -> dict:
    result = subprocess.run(
        [str(BI_VENV / "bin" / "python"), "-m", "exops_bi.provision"],
        env=env,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        (bi_home() / "provision.log").write_text(result.stdout + result.stderr)
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise BIError(
            f"provisioning Superset failed (full output in {bi_home() / 'provision.log'}):\n{tail}"
        )
    return json.loads(lines[-1])


def start() -> Started:
    """Provision and start Superset (or re-provision the one running); see the module doc."""
    _require_venv()
    p = port()
    base_url = f"http://{HOST}:{p}"
    reader_url = bi_reader_url()
    as_of = check_marts(reader_url)
    admin_user = setting("bi_admin_user")
    admin_password, generated = _kept_secret(
        "EXOPS_BI_ADMIN_PASSWORD", bi_home() / "admin-password"
    )
    env = _bi_env(reader_url, admin_user, admin_password)
    pid = running_pid()
    if pid is None and _port_taken(p):
        raise BIError(f"{HOST}:{p} is in use by another program: set EXOPS_BI_PORT to a free port")
    provisioned = provision(env)
    if pid is None:
        log = open(bi_home() / "superset.log", "ab")
        proc = subprocess.Popen(
            [
                str(BI_VENV / "bin" / "gunicorn"),
                "--bind",
                f"{HOST}:{p}",
                "--workers",
                "1",
                "--worker-class",
                "gthread",
                "--threads",
                "8",
                "--timeout",
                "120",
                "superset.app:create_app()",
            ],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        _pid_file().write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _healthy(base_url):
            if proc.poll() is not None:
                _pid_file().unlink(missing_ok=True)
                raise BIError(
                    f"Superset exited with {proc.returncode}: see {bi_home() / 'superset.log'}"
                )
            if time.monotonic() > deadline:
                stop()
                raise BIError(
                    f"Superset did not answer on {base_url}/health within"
                    f" {START_TIMEOUT_SECONDS} s: see {bi_home() / 'superset.log'}"
                )
            time.sleep(1)
    return Started(
        url=f"{base_url}/",
        dashboard_url=f"{base_url}/superset/dashboard/{DASHBOARD_SLUG}/",
        admin_user=admin_user,
        admin_password=admin_password,
        password_generated=generated,
        reader_url=warehouse.describe(reader_url),
        as_of=as_of,
        provisioned=provisioned,
        already_running=pid is not None,
    )


def stop(timeout: float = 30) -> bool:
    """Stop the Superset ``start`` launched (its gunicorn and workers); True if one ran."""
    pid = running_pid()
    if pid is None:
        _pid_file().unlink(missing_ok=True)
        return False
    # gunicorn leads the session start() gave it: its workers stop with it
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)
    else:
        os.killpg(pid, signal.SIGKILL)
    _pid_file().unlink(missing_ok=True)
    return True
