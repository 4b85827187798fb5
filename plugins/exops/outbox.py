"""Sending a mail at most once per key: the outbox every exops mail goes through.

Each mail has a key row in a table of the stage that sends it (``quality.dq_notifications``,
``publish.digests``, ``publish.reports_sent``, ``publish.notifications``). Sending is
claim -> SMTP -> mark:

1. claim: ``update ... set claimed_at = now() where <key> and claimed_at is null returning``
   (or an insert that conflicts), committed before anything is sent. Only one run can
   claim a key, so two concurrent runs never both send.
2. SMTP. If the server definitely did not take the message (connection refused, a
   recipient or the data refused), the claim is released and the next run retries.
3. on success, ``emailed_at = now()``.

A crash (or an ambiguous SMTP error) between 1 and 3 leaves ``claimed_at`` set and
``emailed_at`` null. Such a row is never sent again automatically, because the server may
have accepted the message: we choose at-most-once over at-least-once, since a duplicate
alert is exactly what ops asked never to get. These rows are reported as "unconfirmed" by
``publish`` so a person can check the mailbox (the Message-ID is deterministic, derived from
the key) and call :func:`release_unconfirmed` to resend.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from email.message import EmailMessage

import psycopg

from exops.mail import MailSettings, SendError, send

# the outbox tables and the schema each lives in
MAIL_TABLES = {
    "kpi_alerts": "publish",
    "digests": "publish",
    "reports_sent": "publish",
    "notifications": "publish",
    "dq_notifications": "quality",
}


def message_id(*key: object) -> str:
    digest = hashlib.sha256("|".join(str(k) for k in key).encode()).hexdigest()[:32]
    return f"<{digest}@exops>"


def send_claimed(
    conn: psycopg.Connection,
    message: EmailMessage,
    settings: MailSettings,
    mark_sent: Callable[[psycopg.Connection], None],
    release: Callable[[psycopg.Connection], None],
) -> None:
    """Send a message whose key row this process has claimed (and committed)."""
    try:
        send(message, settings)
    except SendError as exc:
        if exc.not_sent:
            with conn.transaction():
                release(conn)
        raise
    with conn.transaction():
        mark_sent(conn)


def release_unconfirmed(conn: psycopg.Connection, table: str) -> int:
    """Let claimed-but-unconfirmed mails of ``table`` be sent again (after a human checked)."""
    if table not in MAIL_TABLES:
        raise ValueError(f"no mail table {table!r}")
    if table == "kpi_alerts":
        sql = "update publish.kpi_alerts set claimed_at = null where emailed_at is null"
    else:
        sql = f"delete from {MAIL_TABLES[table]}.{table} where emailed_at is null"
    with conn.transaction():
        return conn.execute(sql).rowcount
