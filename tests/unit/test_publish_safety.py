"""Values from data never become headers, formulas or leaked secrets (no services)."""

from __future__ import annotations

from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default

import pytest

from exops.mail import attachment_name, header_text
from exops.notify import error_excerpt, mask_secrets
from exops.publish.report import Table, csv_cell


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("C1\r\nBcc: attacker@example.com", "C1\\r\\nBcc: attacker@example.com"),
        ("tab\there", "tab\\there"),
        ("nul\x00esc\x1b", "nul\\x00esc\\x1b"),
        ("line\u2028sep\x85", "line\\u2028sep\\x85"),
        ("plain café ✓", "plain café ✓"),
    ],
)
def test_header_text_escapes_every_control_character(value: str, expected: str) -> None:
    assert header_text(value) == expected


def test_an_escaped_header_survives_the_email_library_and_injects_nothing() -> None:
    msg = EmailMessage()
    msg["Subject"] = header_text("alert [campaign_id=C1\r\nBcc: attacker@example.com]")
    msg["From"] = "a@b.test"
    msg.set_content("x")
    parsed = BytesParser(policy=default).parsebytes(msg.as_bytes())
    assert parsed.get_all("Bcc") is None
    assert "\n" not in parsed["Subject"] and "\r" not in parsed["Subject"]


def test_header_text_is_cut_to_its_limit() -> None:
    assert header_text("x" * 1000, limit=20) == "x" * 19 + "…"


def test_attachment_names_lose_path_separators_quotes_and_controls() -> None:
    assert attachment_name('../a"b\r\n.csv') == ".._a_b_r_n.csv"
    assert attachment_name("") == "attachment"


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+cmd", "'+cmd"),
        ("-cmd|' /C calc'!A0", "'-cmd|' /C calc'!A0"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("-12.5", "-12.5"),
        ("+3", "+3"),
        ("-1e5", "-1e5"),
        ("C1", "C1"),
        ("<5", "<5"),
        (-12.5, -12.5),
        (None, ""),
    ],
)
def test_csv_cells_that_would_be_formulas_are_prefixed(cell, expected) -> None:
    assert csv_cell(cell) == expected


def test_a_table_csv_neutralises_formulas_but_keeps_numbers() -> None:
    from decimal import Decimal

    table = Table(
        "t",
        "T",
        [("Id", "id", False), ("ROI", "roi", False)],
        [{"id": "=1+2", "roi": Decimal("-12.5")}],
    )
    assert table.csv_bytes().decode() == "Id,ROI\n'=1+2,-12.5\n"


def test_secrets_are_masked(monkeypatch) -> None:
    wh, other = "wh-s3cret", "other-pw"  # kept out of URL literals: no secret in the repo
    monkeypatch.setenv("EXOPS_SMTP_PASSWORD", "smtp-s3cret")
    monkeypatch.setenv("EXOPS_WAREHOUSE_URL", f"postgresql://loader:{wh}@db:5432/exops")
    text = (
        f"cannot connect to postgresql://loader:{wh}@db:5432/exops\n"
        "dsn: host=db user=u password=pw123 dbname=x\n"
        f"smtp login smtp-s3cret refused; again at postgres://x:{other}@h/db"
    )
    masked = mask_secrets(text)
    for secret in ("wh-s3cret", "pw123", "smtp-s3cret", "other-pw"):
        assert secret not in masked
    assert "postgresql://loader:***@db:5432/exops" in masked
    assert "password=***" in masked


def test_error_excerpt_keeps_the_first_lines_masked() -> None:
    pw = "p4ss"
    error = RuntimeError("\n".join(f"line {i} postgresql://u:{pw}@h/db" for i in range(50)))
    text = error_excerpt(error, lines=3)
    assert text.splitlines()[0] == "RuntimeError: line 0 postgresql://u:***@h/db"
    assert text.splitlines()[3] == "... (47 more lines in the log)"
    assert "p4ss" not in text


@pytest.mark.parametrize(("raw", "hours"), [(None, 30.0), ("48", 48.0), ("0.5", 0.5)])
def test_the_publish_deadline_comes_from_the_environment(monkeypatch, raw, hours) -> None:
    from exops.notify import deadline_hours

    if raw is None:
        monkeypatch.delenv("EXOPS_PUBLISH_DEADLINE_HOURS", raising=False)
    else:
        monkeypatch.setenv("EXOPS_PUBLISH_DEADLINE_HOURS", raw)
    assert deadline_hours() == hours


@pytest.mark.parametrize("raw", ["soon", "-2"])
def test_a_malformed_publish_deadline_is_named(monkeypatch, raw) -> None:
    """Validated with every setting: the task that reads it fails, naming it."""
    from exops.notify import deadline_hours
    from exops.settings import SettingError

    monkeypatch.setenv("EXOPS_PUBLISH_DEADLINE_HOURS", raw)
    with pytest.raises(SettingError) as exc:
        deadline_hours()
    assert str(exc.value) == (
        f"EXOPS_PUBLISH_DEADLINE_HOURS: must be a number of hours from 0 to 8760, got {raw!r}"
    )
