"""The webhook channel against a real HTTP server on 127.0.0.1: a Slack-compatible JSON POST
per audience, each (key, audience) at most once, a refusal retried, an ambiguous failure
never resent, and the URL (a secret) in no error."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from exops import webhook

# not run again on PostgreSQL 15 (make test-pg15): an HTTP channel and its outbox rows
pytestmark = pytest.mark.server_agnostic

SECRET_PATH = "/services/T000/B000/s3cr3t-token-xyz"


class Hook:
    """A webhook receiver: records each POST; ``status`` and ``delay`` shape its answer."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.paths: list[str] = []
        self.status = 200
        self.delay = 0.0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                assert self.headers["Content-Type"] == "application/json"
                hook.paths.append(self.path)
                hook.posts.append(json.loads(body))
                if hook.delay:
                    time.sleep(hook.delay)
                self.send_response(hook.status)
                self.end_headers()
                self.wfile.write(b"ok" if hook.status == 200 else b"invalid_payload")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{SECRET_PATH}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Hook]]:
    made = {"ops": Hook(), "data_eng": Hook()}
    for audience, hook in made.items():
        monkeypatch.setenv(f"EXOPS_WEBHOOK_URL_{audience.upper()}", hook.url)
    monkeypatch.setenv("EXOPS_WEBHOOK_TIMEOUT_SECONDS", "1")
    try:
        yield made
    finally:
        for hook in made.values():
            hook.close()


def _rows(conn, key: str) -> list[tuple]:
    return conn.execute(
        "select audience, posted_at is not null from publish.webhook_deliveries"
        " where notification_key = %s order by audience",
        (key,),
    ).fetchall()


def test_posts_slack_json_once_per_audience(conn, hooks) -> None:
    first = webhook.send_once(conn, "k1", ["ops", "risk", "data_eng"], "kpi_alert", "Title", "body")
    assert first.posted == ["ops", "data_eng"] and not first.errors  # risk has no webhook
    (post,) = hooks["ops"].posts
    assert post["text"] == "Title\nbody"
    assert post["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "Title"}}
    assert post["blocks"][1]["text"] == {"type": "mrkdwn", "text": "body"}
    assert hooks["ops"].paths == [SECRET_PATH]
    again = webhook.send_once(conn, "k1", ["ops", "data_eng"], "kpi_alert", "Title", "body")
    assert again.posted == [] and len(hooks["ops"].posts) == 1
    assert len(hooks["data_eng"].posts) == 1
    assert _rows(conn, "k1") == [("data_eng", True), ("ops", True)]


def test_a_refused_post_is_released_and_sent_by_the_next_run(conn, hooks) -> None:
    hooks["ops"].status = 500
    failed = webhook.send_once(conn, "k2", ["ops"], "report", "T", "x")
    assert failed.posted == []
    (error,) = failed.errors
    assert "HTTP 500 invalid_payload" in error
    assert SECRET_PATH not in error and "s3cr3t" not in error
    assert _rows(conn, "k2") == []  # the claim was released
    hooks["ops"].status = 200
    assert webhook.send_once(conn, "k2", ["ops"], "report", "T", "x").posted == ["ops"]
    assert len(hooks["ops"].posts) == 2  # the refused one, then the accepted one


def test_a_timeout_after_posting_is_never_resent(conn, hooks) -> None:
    hooks["ops"].delay = 2.5  # answers after the 1 s timeout: the server got the post
    failed = webhook.send_once(conn, "k3", ["ops"], "kpi_alert", "T", "x")
    (error,) = failed.errors
    assert "may have been delivered" in error and "s3cr3t" not in error
    assert _rows(conn, "k3") == [("ops", False)]  # claimed, unconfirmed
    hooks["ops"].delay = 0
    assert webhook.send_once(conn, "k3", ["ops"], "kpi_alert", "T", "x").posted == []
    assert len(hooks["ops"].posts) == 1


def test_a_refused_connection_is_retried(conn, monkeypatch) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("EXOPS_WEBHOOK_URL_OPS", f"http://127.0.0.1:{port}{SECRET_PATH}")
    failed = webhook.send_once(conn, "k4", ["ops"], "kpi_alert", "T", "x")
    (error,) = failed.errors
    assert f"http://127.0.0.1:{port}" in error and "s3cr3t" not in error
    assert "ConnectionRefusedError" in error
    assert _rows(conn, "k4") == []


def test_without_a_webhook_nothing_is_posted_or_recorded(conn, monkeypatch) -> None:
    monkeypatch.delenv("EXOPS_WEBHOOK_URL_OPS", raising=False)
    assert webhook.send_once(conn, "k5", ["ops"], "kpi_alert", "T", "x").posted == []
