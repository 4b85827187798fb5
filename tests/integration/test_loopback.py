"""Servers the project starts listen on loopback only: the embedded PostgreSQL on a Unix
socket (no TCP at all) and the local mail sink on 127.0.0.1. (Values rendered into HTML
emails are escaped: test_publish.py::test_malicious_values_are_escaped.)"""

from __future__ import annotations

import smtplib
import socket
import warnings

import psutil
import psycopg
import pytest

from exops import warehouse
from exops.publish.mailsink import start_sink

# the embedded server and the mail sink only: never the server EXOPS_WAREHOUSE_URL names
pytestmark = pytest.mark.server_agnostic


def _non_loopback_ips() -> list[str]:
    ips = []
    for addresses in psutil.net_if_addrs().values():
        for a in addresses:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                ips.append(a.address)
    return ips


def test_embedded_postgres_listens_on_no_tcp_address() -> None:
    pgdata = warehouse.embedded_pgdata()
    was_running = (pgdata / "postmaster.pid").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        server = pgserver.get_server(pgdata, cleanup_mode=None)
    try:
        url = server.get_uri("postgres")
        assert "host=/" in url  # a Unix socket directory, not a host name
        with psycopg.connect(url) as conn:
            assert conn.execute("show listen_addresses").fetchone()[0] == ""
        # the postmaster's pid is the first line of postmaster.pid (a backend's pid would
        # race: the backend exits as soon as its connection closes)
        postmaster_pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
        postmaster = psutil.Process(postmaster_pid)
        assert "postgres" in postmaster.name()
        inet = [c for c in postmaster.net_connections(kind="inet") if c.status == "LISTEN"]
        assert inet == [], f"the embedded server listens on {inet}"
    finally:
        if not was_running:
            warehouse.stop_embedded()


def test_embedded_warehouse_is_tuned_once_and_stays_socket_only(tmp_path, monkeypatch) -> None:
    """A fresh embedded warehouse gets its bulk-load settings (one restart, still no TCP);
    the next start finds them applied and restarts nothing."""
    monkeypatch.setenv("EXOPS_VAR_DIR", str(tmp_path))
    monkeypatch.delenv(warehouse.ENV_URL, raising=False)
    pgdata = tmp_path / "pg"
    try:
        url = warehouse.warehouse_url()
        wanted = warehouse.embedded_settings()
        with psycopg.connect(url) as conn:
            shown = dict(
                conn.execute(
                    "select name, current_setting(name) from pg_settings where name = any(%s)",
                    (list(wanted),),
                ).fetchall()
            )
            assert conn.execute("show listen_addresses").fetchone()[0] == ""
        assert shown["max_wal_size"] == "8GB" and shown["jit"] == "off"
        shared_mb = int(wanted["shared_buffers"].removesuffix("MB"))
        assert shown["shared_buffers"] in (f"{shared_mb}MB", f"{shared_mb // 1024}GB")
        postmaster_pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
        inet = [
            c
            for c in psutil.Process(postmaster_pid).net_connections(kind="inet")
            if c.status == "LISTEN"
        ]
        assert inet == [], f"the restarted embedded server listens on {inet}"
        assert warehouse.warehouse_url() == url
        assert int((pgdata / "postmaster.pid").read_text().splitlines()[0]) == postmaster_pid
    finally:
        warehouse.stop_embedded()


def test_mail_sink_binds_loopback_only(tmp_path) -> None:
    host, port, stop = start_sink(directory=tmp_path)
    try:
        assert host == "127.0.0.1"
        listening = [
            c.laddr
            for c in psutil.net_connections(kind="inet")
            if c.status == "LISTEN" and c.laddr.port == port
        ]
        assert listening and {a.ip for a in listening} == {"127.0.0.1"}
        with smtplib.SMTP(host, port, timeout=10) as smtp:
            assert smtp.noop()[0] == 250
        for ip in _non_loopback_ips():
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex((ip, port)) != 0, f"the sink answers on {ip}:{port}"
    finally:
        stop()
