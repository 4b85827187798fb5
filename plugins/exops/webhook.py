"""The webhook channel: a Slack-compatible JSON POST per audience, beside email.

``EXOPS_WEBHOOK_URL_<AUDIENCE>`` (through :mod:`exops.settings`) gives an audience's
incoming-webhook URL; an audience without one gets email only. The body is what Slack (and
Mattermost, Rocket.Chat, Teams' Slack-compatible hooks) accept: ``{"text": ..., "blocks":
[header, section]}``, ``text`` being the fallback shown in notifications.

Each post goes through the same outbox discipline as every exops mail (:mod:`exops.outbox`):
a row in ``publish.webhook_deliveries`` keyed by (notification key, audience) is claimed and
committed before the POST, marked ``posted_at`` after a 2xx answer, and released only when
the server certainly did not take it (connection refused, name not resolved, an HTTP error
status). A timeout or a connection lost after the request went out leaves the claim in
place: at most once, never twice. The URL is a secret (whoever holds it may post): errors
and logs name only its scheme, host and port.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import psycopg

from exops import warehouse
from exops.mail import SendError
from exops.settings import load_settings

log = logging.getLogger(__name__)

WEBHOOK_DDL = (
    """
    create table if not exists publish.webhook_deliveries (
      notification_key text not null,
      audience text not null,
      kind text not null,
      claimed_at timestamptz not null default now(),
      posted_at timestamptz,
      primary key (notification_key, audience)
    )
    """,
)
_MAX_TEXT = 3000  # Slack's limit for a section block's text


def ensure_webhook_table(conn: psycopg.Connection) -> None:
    """``publish.webhook_deliveries`` (idempotent; created by ``exops warehouse init``)."""
    if conn.execute("select to_regclass('publish.webhook_deliveries')").fetchone()[0] is None:
        warehouse.ensure_tables(conn, "publish", WEBHOOK_DDL)


def where(url: str) -> str:
    """What of a webhook URL may be shown: scheme, host and port, never the path."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def slack_payload(title: str, text: str) -> dict:
    """A minimal Slack-compatible message: a header block, a section, and ``text``."""
    body = text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"
    return {
        "text": f"{title}\n{body}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body}},
        ],
    }


def post(url: str, payload: dict, timeout: float) -> None:
    """POST ``payload`` as JSON; raises SendError (``not_sent``: a retry is safe)."""
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    shown = where(url)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
            response.read(4096)
    except urllib.error.HTTPError as exc:
        # the server answered with an error status: it did not take the message
        detail = exc.read(200).decode("utf-8", "replace").strip()
        raise SendError(
            f"webhook {shown} refused the post: HTTP {exc.code} {detail}".rstrip(), True
        ) from None
    except urllib.error.URLError as exc:
        # raised while connecting or sending: only a refused connection, an unknown name or
        # a certificate refused before any byte went out are certainly not posted
        certain = isinstance(
            exc.reason, ConnectionRefusedError | socket.gaierror | ssl.SSLCertVerificationError
        )
        raise SendError(f"cannot post to webhook {shown}: {exc.reason!r}", certain) from None
    except (OSError, http.client.HTTPException) as exc:
        raise SendError(
            f"webhook {shown} did not answer within {timeout:g}s or dropped the connection"
            f" after the post was sent ({type(exc).__name__}); it may have been delivered",
            False,
        ) from None
    if not 200 <= status < 300:
        raise SendError(f"webhook {shown} answered HTTP {status}", True)


@dataclass
class Delivery:
    posted: list[str] = field(default_factory=list)  # audiences posted to by this call
    errors: list[str] = field(default_factory=list)


def send_once(
    conn: psycopg.Connection,
    key: str,
    audiences: list[str] | tuple[str, ...],
    kind: str,
    title: str,
    text: str,
) -> Delivery:
    """Post to the webhook of each of ``audiences`` that has one, at most once per (key,
    audience). Errors are collected (one audience's failure does not stop the others)."""
    settings = load_settings()
    done = Delivery()
    urls = {
        a: settings.webhook_urls[a] for a in dict.fromkeys(audiences) if a in settings.webhook_urls
    }
    if not urls:
        return done
    ensure_webhook_table(conn)
    payload = slack_payload(title, text)
    for audience, url in urls.items():
        with conn.transaction():
            claimed = conn.execute(
                "insert into publish.webhook_deliveries (notification_key, audience, kind)"
                " values (%s, %s, %s) on conflict do nothing returning audience",
                (key, audience, kind),
            ).fetchone()
        if claimed is None:
            continue
        try:
            post(url, payload, settings.webhook_timeout_seconds)
        except SendError as exc:
            if exc.not_sent:
                with conn.transaction():
                    conn.execute(
                        "delete from publish.webhook_deliveries"
                        " where notification_key = %s and audience = %s",
                        (key, audience),
                    )
            log.error("webhook of %s: %s", audience, exc)
            done.errors.append(f"webhook of {audience} ({kind}): {exc}")
            continue
        with conn.transaction():
            conn.execute(
                "update publish.webhook_deliveries set posted_at = now()"
                " where notification_key = %s and audience = %s",
                (key, audience),
            )
        done.posted.append(audience)
    return done
