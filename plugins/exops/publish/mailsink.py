"""A local SMTP sink: accepts any mail on 127.0.0.1 and stores each message as a .eml file.

``make run`` starts it so that a local run shows every mail it would send under var/mail/.
Use ``start_sink()`` in a process (a background thread) or ``python -m
exops.publish.mailsink [--port N]`` as a foreground server.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from exops.mail import LOCAL_HOST, LOCAL_PORT
from exops.settings import var_dir

log = logging.getLogger(__name__)


def mail_dir() -> Path:
    path = var_dir() / "mail"
    path.mkdir(parents=True, exist_ok=True)
    return path


class _StoreHandler:
    def __init__(self, directory: Path):
        self.directory = directory

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd API)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        final = self.directory / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        tmp = final.with_suffix(".tmp")
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        header = (
            f"X-Exops-Envelope-From: {envelope.mail_from}\r\n"
            f"X-Exops-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        tmp.write_bytes(header + content)
        tmp.replace(final)  # readers never see half a message
        log.info("stored mail %s for %s", final.name, envelope.rcpt_tos)
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOCAL_HOST, 0))
        return s.getsockname()[1]


def start_sink(
    port: int | None = None, directory: Path | None = None
) -> tuple[str, int, Callable[[], None]]:
    """Start the sink in a background thread: (host, port, stop). ``port=None``: a free one."""
    try:
        from aiosmtpd.controller import Controller
    except ImportError:  # a development tool: the production image sends through SMTP
        raise RuntimeError(
            "the local mail sink needs aiosmtpd, a development dependency (`make install`"
            " installs it); in production set EXOPS_SMTP_HOST to your SMTP server"
        ) from None

    directory = directory or mail_dir()
    directory.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
    controller = Controller(_StoreHandler(directory), hostname=LOCAL_HOST, port=port)
    controller.start()
    stopped = threading.Event()

    def stop() -> None:
        if not stopped.is_set():
            stopped.set()
            controller.stop()

    return LOCAL_HOST, port, stop


def serve(port: int = LOCAL_PORT, directory: Path | None = None) -> None:
    """Run the sink in the foreground until SIGINT or SIGTERM."""
    host, port, stop = start_sink(port, directory)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    print(f"exops mail sink on {host}:{port}, storing to {directory or mail_dir()}", flush=True)
    try:
        done.wait()
    finally:
        stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=LOCAL_PORT)
    parser.add_argument("--dir", type=Path, default=None, help="default: var/mail")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    serve(args.port, args.dir)


if __name__ == "__main__":
    main()
