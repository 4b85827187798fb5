"""Telling data engineers (audience ``data_eng``) about the platform itself, each thing once.

- :func:`tell_stage_failure`: a stage (ingest, transform, validate, publish) failed. Airflow
  calls it through :func:`exops.orchestration.on_task_failure` (every task's
  ``on_failure_callback``, so only once the retries are spent), ``exops run --via direct``
  when a stage raises. Keyed by (dag_id, DAG run, stage): the ingest DAG's three tasks of
  one run make one email, and a rerun of the same DAG run sends none. A DAG run is its
  logical date when it has one (``airflow dags test`` replaces the run of a date with a new
  run id; a scheduled run's date is unique anyway), else its run id (asset-triggered runs).
- :func:`tell_render_failures`: alerts or report sections whose email could not be
  rendered (the others went out). Keyed by the as-of date and what failed.
- :func:`check_publish_deadline`: the latest as-of date loaded has no report
  ``EXOPS_PUBLISH_DEADLINE_HOURS`` (default 30) after the end of that day. Keyed by the day.

Each email has a row in ``publish.notifications`` (this module's table: every stage's role
may write it, ``exops warehouse init`` grants it), claimed before sending, as every exops
mail is (:mod:`exops.outbox`). When the warehouse cannot be reached (often the very failure
being told) the claim is a file under ``var/notifications/`` created exclusively.

This is shared delivery, below the stages: it imports no stage, and every stage (through
:mod:`exops.orchestration` and the command line) may use it.
Error texts are cut to their first lines and masked: no connection URL keeps its password,
no ``password=...`` its value, no secret from the environment appears.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage

import psycopg

from exops import warehouse
from exops.mail import SendError, header_text, mail_settings, send
from exops.outbox import message_id, send_claimed
from exops.settings import load_settings, var_dir

log = logging.getLogger(__name__)

_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^\s/@:]*):([^\s/@]*)@")
_KEY_VALUE_SECRET = re.compile(
    r"(?i)\b(password|passwd|pwd|secret|token|api_key)(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&]+)"
)
_SECRET_ENV = re.compile(
    r"(?i)(password|passwd|secret|token|fernet|private_key|api_key|webhook_url)"
)
MASK = "***"

NOTIFICATIONS_DDL = (
    """
    create table if not exists publish.notifications (
      notification_key text primary key,
      kind text not null,
      subject text not null,
      details text not null,
      message_id text not null,
      recipients text not null,
      claimed_at timestamptz not null default now(),
      emailed_at timestamptz
    )
    """,
)


def ensure_notifications_table(conn: psycopg.Connection) -> None:
    """``publish.notifications`` (idempotent; earlier versions kept it in schema audit)."""
    warehouse.ensure_tables(conn, "publish", NOTIFICATIONS_DDL, ("notifications",))


def _environment_secrets() -> list[str]:
    secrets = []
    for name, value in os.environ.items():
        if _SECRET_ENV.search(name) and len(value) >= 4:
            secrets.append(value)
        elif name.endswith("_URL") or name.endswith("_CONN"):
            m = _URL_CREDENTIALS.search(value)
            if m and len(m.group(3)) >= 4:
                secrets.append(m.group(3))
    return sorted(set(secrets), key=len, reverse=True)


def mask_secrets(text: str) -> str:
    """``text`` with credentials masked: ``postgresql://user:***@host``, ``password=***`` and
    the value of every secret-named environment variable replaced by ``***``."""
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{m.group(2)}:{MASK}@", text)
    text = _KEY_VALUE_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    for secret in _environment_secrets():
        text = text.replace(secret, MASK)
    return text


def error_excerpt(error: BaseException | str | None, lines: int = 20, chars: int = 3000) -> str:
    """The first lines of an error, masked; the exception's type leads."""
    if error is None:
        return "(no error recorded)"
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    kept = text.strip().splitlines()
    cut = "\n".join(kept[:lines])
    if len(kept) > lines:
        cut += f"\n... ({len(kept) - lines} more lines in the log)"
    if len(cut) > chars:
        cut = cut[:chars] + " ... (cut; the whole error is in the log)"
    return mask_secrets(cut)


def _message(
    subject: str,
    body: str,
    msg_id: str,
    recipients: list[str],
    sender: str,
    html: str | None = None,
):
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = header_text(subject)
    msg["Message-ID"] = msg_id
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


def send_once(
    conn: psycopg.Connection,
    key: str,
    kind: str,
    subject: str,
    body: str,
    html: str | None = None,
) -> bool:
    """Email data engineers unless ``key`` was told before (``html``: an HTML alternative of
    ``body``); True when this call sent it."""
    settings = mail_settings()
    recipients = settings.recipients(["data_eng"])
    msg_id = message_id("notification", key)
    message = _message(subject, body, msg_id, recipients, settings.sender, html)
    _ensure_notifications(conn)
    with conn.transaction():
        claimed = conn.execute(
            "insert into publish.notifications (notification_key, kind, subject, details,"
            " message_id, recipients) values (%s, %s, %s, %s, %s, %s)"
            " on conflict (notification_key) do nothing returning notification_key",
            (key, kind, header_text(subject), body, msg_id, ", ".join(recipients)),
        ).fetchone()
    if claimed is None:
        return False
    send_claimed(
        conn,
        message,
        settings,
        mark_sent=lambda c: c.execute(
            "update publish.notifications set emailed_at = now() where notification_key = %s",
            (key,),
        ),
        release=lambda c: c.execute(
            "delete from publish.notifications where notification_key = %s", (key,)
        ),
    )
    return True


def _claim_file(key: str):
    folder = var_dir() / "notifications"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.claimed"


# the role a stage's process connects as (its worker holds only that role's credentials)
STAGE_ROLES = {"ingest": "loader", "transform": "transformer", "validate": "transformer"}


def _ensure_notifications(conn: psycopg.Connection) -> None:
    """``exops warehouse init`` creates publish.notifications for every stage to write; a
    single-URL setup (the admin) creates it here."""
    if conn.execute("select to_regclass('publish.notifications')").fetchone()[0] is None:
        ensure_notifications_table(conn)


def _send_once_anywhere(key: str, kind: str, subject: str, body: str, stage: str) -> bool:
    """:func:`send_once` in the warehouse, connected as ``stage``'s role; a local claim file
    when it is unreachable."""
    claim = _claim_file(key)
    if claim.exists():  # told while the warehouse was unreachable
        return False
    try:
        with warehouse.connection(
            warehouse.stage_url(STAGE_ROLES.get(stage, "publisher")), autocommit=True
        ) as conn:
            _ensure_notifications(conn)
            return send_once(conn, key, kind, subject, body)
    except (warehouse.WarehouseError, psycopg.Error) as exc:
        log.warning("warehouse unreachable, recording the notification locally: %s", exc)
    try:
        fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return False
    os.write(fd, f"{key}\n".encode())
    os.close(fd)
    settings = mail_settings()
    recipients = settings.recipients(["data_eng"])
    body += "\n(Recorded in var/notifications/: the warehouse could not be reached.)\n"
    message = _message(subject, body, message_id("notification", key), recipients, settings.sender)
    try:
        send(message, settings)
    except SendError as exc:
        if exc.not_sent:
            claim.unlink(missing_ok=True)
        raise
    return True


def tell_stage_failure(
    stage: str,
    error: BaseException | str | None,
    log_location: str,
    dag_id: str,
    run_id: str,
    task_id: str | None = None,
    run_key: str | None = None,
) -> bool:
    """Email data engineers that ``stage`` of this DAG run failed, once per (dag, run, stage);
    ``run_key`` (default ``run_id``) is what identifies the run.

    Never raises: telling must not hide the failure being told (errors are logged)."""
    key = f"stage|{dag_id}|{run_key or run_id}|{stage}"
    subject = f"[exops failure] {stage} failed ({dag_id}, run {run_id})"
    body = "\n".join(
        [
            f"The {stage} stage of exops failed; nothing after it ran for this run.",
            "",
            f"Stage: {stage}",
            f"DAG: {dag_id}",
            f"Run: {run_id}",
            *([f"Task: {task_id}"] if task_id else []),
            f"Log: {log_location}",
            "",
            "Error (first lines, secrets masked):",
            error_excerpt(error),
            "",
            "Sent once per DAG run and stage by exops.",
            "",
        ]
    )
    try:
        sent = _send_once_anywhere(key, "stage_failure", subject, body, stage)
    except Exception:  # noqa: BLE001 - a failure to tell is logged, never raised over the failure
        log.exception("could not tell data engineers that %s failed", stage)
        return False
    log.info("failure of %s %s", stage, "told to data_eng" if sent else "was already told")
    return sent


def tell_render_failures(
    conn: psycopg.Connection, as_of: date, failures: Iterable[tuple[str, str]]
) -> bool:
    """Email data engineers which alerts / report sections of ``as_of`` could not be rendered
    (``failures``: (what, error)); once per as-of date and set of failed items."""
    failures = sorted(failures)
    if not failures:
        return False
    what = "\n".join(w for w, _ in failures)
    key = f"render|{as_of}|{hashlib.sha256(what.encode()).hexdigest()[:32]}"
    subject = f"[exops failure] publish {as_of}: {len(failures)} item(s) could not be rendered"
    lines = [
        f"Publishing {as_of} went on without these items, which could not be rendered;",
        "everything else was sent (each at most once). Failed alerts stay unsent in",
        "publish.kpi_alerts (render_error) and are tried again by the next publish run;",
        "failed report sections are listed in publish.reports_sent.section_errors.",
        "",
    ]
    for w, error in failures:
        lines += [f"- {header_text(w)}", f"  {error_excerpt(error, lines=5, chars=600)}"]
    lines += ["", "Sent once per as-of date and set of failed items by exops.", ""]
    return send_once(conn, key, "render_failure", subject, "\n".join(lines))


def deadline_hours() -> float:
    """``EXOPS_PUBLISH_DEADLINE_HOURS``: hours after the end of an as-of day by which its
    report must be published (raises SettingError naming a malformed value)."""
    return load_settings().publish_deadline_hours


def run_clock() -> datetime:
    """Now, or the start of ``EXOPS_TODAY`` when a run's date is given (simulations, tests)."""
    today = load_settings().today
    return datetime.combine(today, time(0), UTC) if today else datetime.now(UTC)


def check_publish_deadline(
    conn: psycopg.Connection, now: datetime | None = None, hours: float | None = None
) -> date | None:
    """Tell data engineers (once) when the latest as-of date loaded has no report by its
    deadline; returns that day when it is overdue, else None."""
    now = now or run_clock()
    hours = deadline_hours() if hours is None else hours
    if not conn.execute("select to_regclass('audit.partitions') is not null").fetchone()[0]:
        return None
    loaded = conn.execute("select max(partition_date) from audit.partitions").fetchone()[0]
    if loaded is None:
        return None
    _ensure_notifications(conn)
    published = None
    # publishing creates its table on its first run (init does, for the stages' roles)
    if conn.execute("select to_regclass('publish.reports_sent')").fetchone()[0] is not None:
        published = conn.execute("select max(as_of) from publish.reports_sent").fetchone()[0]
    if published is not None and published >= loaded:
        return None
    due = datetime.combine(loaded + timedelta(days=1), time(0), UTC) + timedelta(hours=hours)
    if now <= due:
        return None
    body = "\n".join(
        [
            f"The latest day loaded, {loaded}, has no published report; it was due by",
            f"{due:%Y-%m-%d %H:%M} UTC ({hours:g} hours after the end of the day,",
            "EXOPS_PUBLISH_DEADLINE_HOURS).",
            "",
            f"Latest report published: {published or 'none yet'}.",
            "Check the exops_transform and exops_publish runs (and any failure email), or",
            f"`exops status` and `exops publish --as-of {loaded}`.",
            "",
            "Sent once per overdue day by exops.",
            "",
        ]
    )
    send_once(
        conn,
        f"deadline|{loaded}",
        "publish_deadline",
        f"[exops failure] the report of {loaded} is overdue",
        body,
    )
    return loaded


def check_publish_deadline_quietly(stage: str = "publish") -> date | None:
    """:func:`check_publish_deadline` on the configured warehouse, connected as ``stage``'s
    role, never raising (a stage must not fail because the check could not run)."""
    try:
        with warehouse.connection(
            warehouse.stage_url(STAGE_ROLES.get(stage, "publisher")), autocommit=True
        ) as conn:
            return check_publish_deadline(conn)
    except Exception:  # noqa: BLE001 - logged; the stage itself goes on
        log.exception("the publish deadline could not be checked")
        return None
