"""No secret in the repository: every tracked file is scanned for private keys, cloud keys
and passwords written into connection URLs. Placeholders (change-me, ${VAR}, password) pass.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from exops.settings import PROJECT_ROOT

# built from pieces so that this file does not match itself
PRIVATE_KEY = re.compile("-----BEGIN ([A-Z]+ )?" + "PRIVATE KEY-----")
AWS_ACCESS_KEY = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
AWS_SECRET = re.compile(r"aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+=]{40}", re.I)
URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://([^/\s:@'\"]*):([^@\s/'\"]+)@")
PLACEHOLDERS = {"password", "change-me", "pw", "secret", "pass", "s3cret", "airflow", "guest"}
PLACEHOLDER_PARTS = ("${", "$(", "{", "<", "*", "...")


def tracked_text_files() -> list[tuple[str, str]]:
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    files = []
    for name in filter(None, names):
        path = PROJECT_ROOT / name.decode()
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        files.append((name.decode(), data.decode("utf-8", "replace")))
    return files


def find_secrets(text: str) -> list[str]:
    found = [m.group(0) for m in PRIVATE_KEY.finditer(text)]
    found += [m.group(0) for m in AWS_ACCESS_KEY.finditer(text)]
    found += [m.group(0)[:40] for m in AWS_SECRET.finditer(text)]
    for m in URL_PASSWORD.finditer(text):
        password = m.group(2)
        if password.lower() in PLACEHOLDERS or any(p in password for p in PLACEHOLDER_PARTS):
            continue
        found.append(m.group(0))
    return found


@pytest.mark.parametrize(
    "text",
    [
        "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIE...",
        "key = AKIA" + "ABCDEFGHIJKLMNOP",
        "aws_secret_access_key = " + "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYab",
        "EXOPS_WAREHOUSE_URL=postgresql://etl:" + "Tr0ub4dor@db.internal:5432/exops",
        "redis://:" + "hunter22@cache:6379/0",
    ],
)
def test_the_scanner_finds_each_kind_of_secret(text: str) -> None:
    assert find_secrets(text)


def test_placeholders_are_not_secrets() -> None:
    assert not find_secrets("postgresql://user:password@host:port/db")
    assert not find_secrets("postgresql://${AIRFLOW_DB_USER}:${AIRFLOW_DB_PASSWORD}@airflow-db")
    assert not find_secrets("redis://redis:6379/0 and postgresql://postgres@/postgres?host=/x")


def test_no_tracked_file_holds_a_secret() -> None:
    files = tracked_text_files()
    assert len(files) > 50, "git ls-files lists the repository"
    leaks = {name: hits for name, text in files if (hits := find_secrets(text))}
    assert not leaks, f"secret-looking strings in tracked files: {leaks}"
