"""Every ``EXOPS_*`` setting, in one object validated once: :func:`load_settings`.

``Settings`` (pydantic-settings) reads the environment (or a mapping given to
:func:`load_settings`). A value that is unset or blank takes its default; a bad one raises
:class:`SettingError` naming every bad variable and what it must be, e.g.
``EXOPS_DBT_THREADS: must be a positive integer, got 'x'``. Settings that may be secrets
(every ``*_URL`` and ``*_PASSWORD``) may instead name a file in ``<NAME>_FILE`` (Docker
secrets); the variable wins when both are set.

Every entry point validates the whole object before its work (``exops`` commands through the
stages, each DAG task in :mod:`exops.orchestration`), so a bad value fails the command or the
task with that message. While Airflow parses a DAG file nothing may fail: :func:`at_parse_time`
takes each value it needs on its own and falls back to the default when it is bad.

``docs/settings.md`` is generated from this class (``python -m exops.settings``) and checked
against it by ``tests/unit/test_settings_docs.py``.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AliasChoices, BeforeValidator, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

log = logging.getLogger(__name__)

# plugins/exops/settings.py -> repository root
PROJECT_ROOT = Path(__file__).resolve().parents[2]
MAIL_TO_PREFIX = "EXOPS_MAIL_TO_"
WEBHOOK_URL_PREFIX = "EXOPS_WEBHOOK_URL_"
_ADDRESS = re.compile(r"^[^@\s,<>]+@[^@\s,<>]+$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingError(ValueError):
    """A setting is malformed; the message names the variable and what it must be."""


# ---- what a value must be ------------------------------------------------------------------


def _whole(minimum: int) -> Callable[[Any], Any]:
    what = {0: "a whole number >= 0", 1: "a positive integer"}.get(
        minimum, f"a whole number >= {minimum}"
    )

    def parse(raw: Any) -> Any:
        if not isinstance(raw, str):
            return raw
        if not re.fullmatch(r"[+-]?\d+", raw) or int(raw) < minimum:
            raise ValueError(f"must be {what}, got {raw!r}")
        return int(raw)

    return parse


def _number(raw: Any, accept: Callable[[float], bool], wanted: str) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")  # accepted by no range
    if not accept(value):
        raise ValueError(f"must be {wanted}, got {raw!r}")
    return value


def _hours(raw: Any) -> Any:
    return _number(raw, lambda h: 0 <= h < 24 * 365, "a number of hours from 0 to 8760")


def _share(raw: Any) -> Any:
    return _number(raw, lambda x: 0 < x < 1, "a fraction between 0 and 1 (0.001 is 0.1%)")


def _day(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"must be a date in YYYY-MM-DD form, got {raw!r}") from None


def _port(raw: Any) -> Any:
    if isinstance(raw, str) and (not raw.isdigit() or not 1 <= int(raw) <= 65535):
        raise ValueError(f"must be a port number 1-65535, got {raw!r}")
    return raw


def _flag(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    value = raw.strip().lower()
    if value in _TRUE | _FALSE:
        return value in _TRUE
    raise ValueError(f"must be true or false, got {raw!r}")


def _postgresql_url(raw: Any) -> Any:
    scheme = urlsplit(raw).scheme
    if raw and scheme not in ("postgresql", "postgres"):
        # never the URL itself: it may hold a password
        raise ValueError(f"must be a postgresql:// URL, got scheme {scheme!r}")
    return raw


def _log_level(raw: Any) -> Any:
    if raw not in ("debug", "info", "warn", "error", "none"):
        raise ValueError(f"must be one of debug, info, warn, error, none, got {raw!r}")
    return raw


def _memory(raw: Any) -> Any:
    if not re.fullmatch(r"\d+ ?(kB|MB|GB|TB)?", raw):
        raise ValueError(f"must be a PostgreSQL memory size such as 256MB, got {raw!r}")
    return raw


def _address(raw: Any) -> Any:
    if not _ADDRESS.match(raw):
        raise ValueError(f"{raw!r} is not an email address")
    return raw


def _audiences(raw: Any) -> Any:
    """{audience: "a@x, b@y"} -> {audience: ("a@x", "b@y")}; errors name the variable."""
    out = {}
    for audience, text in raw.items():
        if not isinstance(text, str):
            out[audience] = tuple(text)
            continue
        name = f"{MAIL_TO_PREFIX}{audience.upper()}"
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts:
            raise ValueError(f"{name} is set but holds no address; give a@x.com,b@y.com")
        for part in parts:
            if not _ADDRESS.match(part):
                raise ValueError(f"{name}: {part!r} is not an email address")
        out[audience] = tuple(parts)
    return out


def _webhooks(raw: Any) -> Any:
    """{audience: "https://..."}, each an http(s) URL with a host; errors name the variable,
    never the URL (it is a secret: whoever holds it may post)."""
    out = {}
    for audience, url in raw.items():
        name = f"{WEBHOOK_URL_PREFIX}{audience.upper()}"
        parts = urlsplit(str(url).strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"{name} must be an http:// or https:// URL with a host"
                f" (got scheme {parts.scheme!r})"
            )
        out[audience] = str(url).strip()
    return out


Whole = Annotated[int, BeforeValidator(_whole(0))]
Positive = Annotated[int, BeforeValidator(_whole(1))]
URL = Annotated[str, BeforeValidator(_postgresql_url)]


def _env(name: str, doc: str, default: Any = None, shown: str | None = None, **kw) -> Any:
    """A field read from ``EXOPS_<NAME>``; ``shown`` is the default as the docs print it."""
    extra = {"default_shown": shown} if shown is not None else {}
    if name.endswith(("_URL", "_PASSWORD")):
        kw.setdefault("repr", False)  # URLs may hold passwords too
    return Field(
        default,
        validation_alias=AliasChoices(f"EXOPS_{name}"),
        description=doc,
        json_schema_extra=extra,
        **kw,
    )


# ---- the object ---------------------------------------------------------------------------


class Settings(BaseSettings):
    """Every ``EXOPS_*`` variable exops reads, in the order docs/settings.md lists them."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    # the warehouse and each stage's connection
    warehouse_url: URL = _env(
        "WAREHOUSE_URL",
        "the warehouse's admin (owner of the database, with CREATEROLE), a"
        " `postgresql://user:password@host:port/db` URL: `exops warehouse init`, `exops status`",
        "",
        "embedded PostgreSQL 16 under `var/pg/`",
    )
    loader_url: URL = _env(
        "LOADER_URL", "the loader's role: ingest and unload", "", "`EXOPS_WAREHOUSE_URL`"
    )
    transformer_url: URL = _env(
        "TRANSFORMER_URL",
        "the transformer's role: dbt and the quality gate",
        "",
        "`EXOPS_WAREHOUSE_URL`",
    )
    publisher_url: URL = _env(
        "PUBLISHER_URL", "the publisher's role: alerts and the report", "", "`EXOPS_WAREHOUSE_URL`"
    )
    bi_reader_url: URL = _env(
        "BI_READER_URL",
        "`bi_reader`, as BI tools and `exops metrics` read the marts",
        "",
        "the server of `EXOPS_WAREHOUSE_URL` as `bi_reader` with `EXOPS_BI_READER_PASSWORD`;"
        " on the embedded warehouse, `bi_reader` over the socket",
    )
    loader_password: str = _env(
        "LOADER_PASSWORD",
        "set as exops_loader's by `exops warehouse init --stage-passwords-from-env`",
        "",
    )
    transformer_password: str = _env(
        "TRANSFORMER_PASSWORD",
        "set as exops_transformer's by `exops warehouse init --stage-passwords-from-env`",
        "",
    )
    publisher_password: str = _env(
        "PUBLISHER_PASSWORD",
        "set as exops_publisher's by `exops warehouse init --stage-passwords-from-env`",
        "",
    )
    bi_reader_password: str = _env(
        "BI_READER_PASSWORD",
        "set as bi_reader's by `exops warehouse init --bi-reader-password-from-env`",
        "",
    )
    # where things are
    var_dir: Path | None = _env(
        "VAR_DIR",
        "local state: embedded warehouse, Airflow DB, logs, reports, mail",
        None,
        "`var/`",
    )
    landing_dir: Path | None = _env(
        "LANDING_DIR", "the landing-zone root the DAGs read", None, "`<EXOPS_VAR_DIR>/landing/`"
    )
    # Airflow
    loader_queue: str = _env("LOADER_QUEUE", "the Celery queue of ingest's tasks", "exops_loader")
    transformer_queue: str = _env(
        "TRANSFORMER_QUEUE", "the Celery queue of dbt's and the gate's tasks", "exops_transformer"
    )
    publisher_queue: str = _env(
        "PUBLISHER_QUEUE", "the Celery queue of publishing's tasks", "exops_publisher"
    )
    task_retries: Whole = _env("TASK_RETRIES", "Airflow task retries", 2)
    retry_delay_seconds: Whole = _env("RETRY_DELAY_SECONDS", "Airflow's delay before a retry", 120)
    ingest_timeout_minutes: Positive = _env(
        "INGEST_TIMEOUT_MINUTES", "`execution_timeout` of ingest's tasks", 120
    )
    transform_timeout_minutes: Positive = _env(
        "TRANSFORM_TIMEOUT_MINUTES", "`execution_timeout` of the dbt build", 240
    )
    publish_timeout_minutes: Positive = _env(
        "PUBLISH_TIMEOUT_MINUTES", "`execution_timeout` of validation and publishing", 60
    )
    # dbt
    dbt_work_mem: Annotated[str, BeforeValidator(_memory)] = _env(
        "DBT_WORK_MEM", "`work_mem` (and `maintenance_work_mem`) of dbt's sessions", "256MB"
    )
    dbt_threads: Positive | None = _env(
        "DBT_THREADS",
        "dbt's threads (the marts are the same on any number)",
        None,
        "the number of cores",
    )
    dbt_log_level: Annotated[str, BeforeValidator(_log_level)] = _env(
        "DBT_LOG_LEVEL",
        "level of dbt's file log (`var/dbt/logs/dbt.log`): `debug` adds every statement dbt runs"
        " (and slows every build: dbt's logging is a good part of a day's build), `none` keeps"
        " no file log",
        "info",
    )
    # ingest
    today: Annotated[date | None, BeforeValidator(_day)] = _env(
        "TODAY",
        "the run's date (YYYY-MM-DD) for `exops ingest` when `--today` is not given (the DAG"
        " passes its own day), and the publish deadline's clock",
        None,
        "the UTC clock",
    )
    max_future_days: Whole = _env(
        "MAX_FUTURE_DAYS",
        "how many days after the run's date a partition may be dated before it is held as future",
        1,
    )
    quarantine_retention_days: Positive = _env(
        "QUARANTINE_RETENTION_DAYS",
        "how long `audit.quarantine` keeps a bad row's details (its counts stay in `audit.loads`)",
        90,
    )
    # publishing and mail
    publish_deadline_hours: Annotated[float, BeforeValidator(_hours)] = _env(
        "PUBLISH_DEADLINE_HOURS",
        "hours after the end of the latest as-of day loaded by which its report must be out;"
        " later, data engineers get one email",
        30.0,
        "`30`",
    )
    restatement_tolerance: Annotated[float, BeforeValidator(_share)] = _env(
        "RESTATEMENT_TOLERANCE",
        "a published number that moved by more than this share of itself since (late records,"
        " re-deliveries, unloads) is listed as restated in the next report",
        0.001,
        "`0.001` (0.1%)",
    )
    restatement_count_tolerance: Positive = _env(
        "RESTATEMENT_COUNT_TOLERANCE",
        "the same for counts (users, trades, tickets): listed from a change of this many on",
        1,
    )
    smtp_host: str = _env(
        "SMTP_HOST", "the SMTP server", "", "the local sink on 127.0.0.1 (mail in `var/mail/`)"
    )
    smtp_port: Annotated[int | None, BeforeValidator(_port)] = _env(
        "SMTP_PORT", "its port", None, "8025 with the local sink, else 587"
    )
    smtp_starttls: Annotated[bool | None, BeforeValidator(_flag)] = _env(
        "SMTP_STARTTLS", "STARTTLS (true/false)", None, "false with the local sink, else true"
    )
    smtp_user: str = _env("SMTP_USER", "SMTP login (with `EXOPS_SMTP_PASSWORD`)", "")
    smtp_password: str = _env("SMTP_PASSWORD", "SMTP password (with `EXOPS_SMTP_USER`)", "")
    mail_from: Annotated[str, BeforeValidator(_address)] = _env(
        "MAIL_FROM", "the sender of every email", "exops@localhost"
    )
    # BI (`exops bi start`, Superset)
    bi_port: Annotated[int | None, BeforeValidator(_port)] = _env(
        "BI_PORT", "the port of Superset on 127.0.0.1", None, "`8088`"
    )
    bi_admin_user: str = _env("BI_ADMIN_USER", "Superset's admin login", "admin")
    bi_admin_password: str = _env(
        "BI_ADMIN_PASSWORD", "Superset's admin password", "", "generated once into `var/bi/`"
    )
    mail_to: Annotated[dict[str, tuple[str, ...]], BeforeValidator(_audiences)] = Field(
        default_factory=dict,
        validation_alias=AliasChoices("EXOPS_MAIL_TO_<AUDIENCE>"),
        description="comma-separated addresses of an audience (`ops`, `data_eng`, `risk`, or"
        " any an alert rule names); required for each audience mailed when `EXOPS_SMTP_HOST`"
        " is set",
        json_schema_extra={"default_shown": "`<audience>@exops.local` with the local sink"},
    )

    webhook_urls: Annotated[dict[str, str], BeforeValidator(_webhooks)] = Field(
        default_factory=dict,
        validation_alias=AliasChoices("EXOPS_WEBHOOK_URL_<AUDIENCE>"),
        description="a Slack-compatible incoming-webhook URL of an audience (`ops`, `risk`,"
        " `data_eng`, ...): its alerts and notices are also posted there, each at most once;"
        " a secret, never logged",
        json_schema_extra={"default_shown": "none: email only"},
        repr=False,
    )
    webhook_timeout_seconds: Positive = _env(
        "WEBHOOK_TIMEOUT_SECONDS", "timeout of one webhook POST", 10
    )

    @model_validator(mode="after")
    def _smtp_login_pairs(self) -> Settings:
        if bool(self.smtp_user) != bool(self.smtp_password):
            raise ValueError(
                "EXOPS_SMTP_USER and EXOPS_SMTP_PASSWORD go together: set both or neither"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the environment (or a given mapping) comes in through init, read by _environment()
        return (init_settings,)


def variable(name: str) -> str:
    """The environment variable of field ``name``: ``dbt_threads`` -> ``EXOPS_DBT_THREADS``."""
    return Settings.model_fields[name].validation_alias.choices[0]


FIELDS_BY_VARIABLE = {variable(name): name for name in Settings.model_fields}
# settings that may be secrets: the variable, else the file named in <NAME>_FILE
SECRETS = frozenset(v for v in FIELDS_BY_VARIABLE if v.endswith("_URL") or v.endswith("_PASSWORD"))


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


def _environment(env: Mapping[str, str]) -> dict[str, Any]:
    """The values ``env`` sets, by variable: blanks dropped, secrets read from files."""
    values: dict[str, Any] = {}
    for name in FIELDS_BY_VARIABLE:
        if name == f"{WEBHOOK_URL_PREFIX}<AUDIENCE>":
            hooks = {
                key[len(WEBHOOK_URL_PREFIX) :].lower(): text
                for key, text in env.items()
                if key.startswith(WEBHOOK_URL_PREFIX)
                and len(key) > len(WEBHOOK_URL_PREFIX)
                and text.strip()
            }
            if hooks:
                values[name] = hooks
            continue
        if name == f"{MAIL_TO_PREFIX}<AUDIENCE>":
            audiences = {
                key[len(MAIL_TO_PREFIX) :].lower(): text
                for key, text in env.items()
                if key.startswith(MAIL_TO_PREFIX) and len(key) > len(MAIL_TO_PREFIX)
            }
            if audiences:
                values[name] = audiences
            continue
        raw = secret(name, env) if name in SECRETS else env.get(name, "")
        if raw.strip():
            # a password is kept as given, anything else without surrounding blanks
            values[name] = raw if name.endswith("_PASSWORD") else raw.strip()
    return values


def _message(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        cause = (error.get("ctx") or {}).get("error")
        text = str(cause) if cause is not None else error["msg"]
        where = error["loc"][0] if error["loc"] else None
        lines.append(text if where is None or text.startswith("EXOPS_") else f"{where}: {text}")
    return "\n".join(dict.fromkeys(lines))


_cache: dict[tuple, Settings] = {}


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """The settings of ``env`` (default: the environment), validated; raises SettingError
    naming every bad variable. Validated once per set of ``EXOPS_*`` values."""
    env = os.environ if env is None else env
    key = tuple(sorted((k, v) for k, v in env.items() if k.startswith("EXOPS_")))
    if key not in _cache:
        try:
            _cache[key] = Settings(**_environment(env))
        except ValidationError as exc:
            raise SettingError(_message(exc)) from None
        if len(_cache) > 64:  # tests change the environment often
            _cache.pop(next(iter(_cache)))
    return _cache[key]


def setting(name: str, env: Mapping[str, str] | None = None) -> Any:
    """Field ``name`` alone, validated (SettingError names it when bad): for helpers such as
    :func:`var_dir` that must not fail on another variable."""
    env = os.environ if env is None else env
    var = variable(name)
    own = {k: v for k, v in env.items() if k == var or k == f"{var}_FILE"}
    return getattr(load_settings(own), name)


def at_parse_time(name: str, env: Mapping[str, str] | None = None) -> Any:
    """Field ``name`` while Airflow parses a DAG file: never raises. A bad value gives the
    default (with a warning in the parse log); the task then fails naming it."""
    try:
        return setting(name, env)
    except SettingError as exc:
        log.warning("%s; using the default until it is fixed (the tasks will fail)", exc)
        return Settings.model_fields[name].get_default(call_default_factory=True)


# ---- where things are ---------------------------------------------------------------------


def var_dir() -> Path:
    """Local state (embedded PostgreSQL, Airflow DB, reports, mail): ``EXOPS_VAR_DIR`` or ./var."""
    path = (setting("var_dir") or PROJECT_ROOT / "var").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def dbt_project_dir() -> Path:
    return PROJECT_ROOT / "dbt_project"


def default_landing_dir() -> Path:
    return (setting("landing_dir") or var_dir() / "landing").resolve()


# ---- the documentation ------------------------------------------------------------------


def _default_shown(field: FieldInfo) -> str:
    extra = field.json_schema_extra or {}
    if "default_shown" in extra:
        return str(extra["default_shown"])
    default = field.get_default(call_default_factory=True)
    return "" if default in ("", None) else f"`{default}`"


def markdown_table() -> str:
    """docs/settings.md's table: every variable, what it means, its default."""
    rows = ["| variable | meaning | default |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        var = variable(name)
        shown = f"`{var}`" + (f", `{var}_FILE`" if var in SECRETS else "")
        rows.append(f"| {shown} | {field.description} | {_default_shown(field)} |")
    return "\n".join(rows) + "\n"


DOCS_HEADER = """# Settings

Everything comes from the environment; nothing secret lives in the repository. This table is
generated from `exops.settings.Settings` (`.venv/bin/python -m exops.settings >
docs/settings.md`) and a unit test checks it still matches. Every variable is validated
once, before a command or DAG task does anything; a bad value stops it with a message naming
the variable (`EXOPS_DBT_THREADS: must be a positive integer, got 'x'`). While Airflow parses
the DAG files a bad value never breaks their import: the default is used there and the
tasks fail with that message. A `*_FILE` variant names a file holding the value (Docker
secrets); the variable itself wins when both are set.

"""
DOCS_FOOTER = """
Not settings: `EXOPS_PG_*` are the connection exops hands to dbt's profile for each build;
`EXOPS_BI_HOME`, `EXOPS_BI_DASHBOARDS_DIR` and `EXOPS_BI_MARTS_DIR` are read by Superset's
provisioning in `.venv-bi` (`exops bi start` runs it); `EXOPS_IMAGE`, `EXOPS_SUPERSET_IMAGE`
and `EXOPS_LANDING_HOST_DIR` are read by `docker-compose.yaml` only.
"""


def docs_markdown() -> str:
    return DOCS_HEADER + markdown_table() + DOCS_FOOTER


if __name__ == "__main__":
    sys.stdout.write(docs_markdown())
