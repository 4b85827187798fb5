"""Publishing survives bad values, on a real warehouse and a real SMTP server: a value with
CR/LF injects no header, a CSV cell is never a formula, and an alert or report section that
cannot be rendered is recorded and told to data engineers while everything else goes out,
each mail at most once, also on the next runs."""

from __future__ import annotations

import csv
import email
import io
from collections import Counter
from email.policy import default as default_policy

import psycopg
import pytest
from test_publish_support import AS_OF, build_sample, mail_environment, read_mail, text_of

from exops.publish import digest, publish, report
from exops.quality import validate

# not run again on PostgreSQL 15 (make test-pg15): escaping and the outbox's bookkeeping, in
# Python
pytestmark = pytest.mark.server_agnostic

INJECTED = "C1\r\nBcc: attacker@example.com"
FORMULA = '=HYPERLINK("http://x")'
RECIPIENTS = {
    "ops": "ops1@platform.test",
    "risk": "risk@platform.test",
    "data_eng": "de@platform.test",
}


def _add_hostile_campaigns(url: str) -> None:
    """Two campaigns with hostile ids, staged as they came (10 enrolled users, 20 USD of
    rewards each) and in the mart."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "insert into marts.campaign_performance values"
            " (%s, 'fee_discount', 'spot', '2026-09-12', '2026-09-29', true, 10, 100, 1, 51, 1,"
            " 1, 50, 5, 20, -0.75),"
            " (%s, 'fee_discount', 'spot', '2026-09-13', '2026-09-27', true, 10, 100, 1, 51, 1,"
            " 1, 50, 5, 20, -12.5)",
            (INJECTED, FORMULA),
        )
        for campaign, start in ((INJECTED, "2026-09-12"), (FORMULA, "2026-09-13")):
            conn.execute(
                "insert into staging.stg_crm__campaigns values (%s, %s)", (campaign, start)
            )
            conn.execute(
                "insert into staging.stg_crm__campaign_enrollments"
                " select %s, 'h-' || k from generate_series(1, 10) as k",
                (campaign,),
            )
            conn.execute(
                "insert into staging.stg_crm__rewards values (%s, %s, 'h-1', 20, '2026-09-20')",
                ("RW-" + campaign, campaign),
            )


def _raw_headers(path) -> list[str]:
    """The header lines of a stored .eml exactly as they arrived (before any parsing)."""
    head = path.read_bytes().split(b"\r\n\r\n", 1)[0]
    return head.decode("utf-8", "replace").split("\r\n")


@pytest.fixture(scope="module")
def hostile(warehouse_url, tmp_path_factory):
    build_sample(warehouse_url)
    _add_hostile_campaigns(warehouse_url)
    var = tmp_path_factory.mktemp("var")
    with mail_environment(var, RECIPIENTS) as mail:
        assert validate(warehouse_url).passed
        mp = pytest.MonkeyPatch()
        real_item, real_rows = digest.item, report._rows

        def broken_item(row, descriptions):
            if row["rule"] == "traders_drop":
                raise RuntimeError("renderer bug for traders_drop")
            return real_item(row, descriptions)

        def broken_rows(conn, sql, params):
            if "from marts.nps_weekly" in sql:
                raise RuntimeError("nps section bug")
            return real_rows(conn, sql, params)

        mp.setattr(digest, "item", broken_item)
        mp.setattr(report, "_rows", broken_rows)
        try:
            first = publish(warehouse_url)
            first_mail = sorted(mail.glob("*.eml"))
            second = publish(warehouse_url)  # the bug is still there: nothing new goes out
            second_mail = sorted(mail.glob("*.eml"))
        finally:
            mp.undo()
        third = publish(warehouse_url)  # the bug fixed: the held-back alert goes out, once
        yield {
            "url": warehouse_url,
            "var": var,
            "mail": mail,
            "runs": (first, second, third),
            "first_mail": first_mail,
            "second_mail": second_mail,
        }


def test_no_header_is_injected_by_a_value_with_cr_lf(hostile) -> None:
    paths = sorted(hostile["mail"].glob("*.eml"))
    digests = [m for m in read_mail(hostile["mail"]) if "ops digest" in m["Subject"]]
    bodies = [m.get_body(("plain",)).get_content() for m in digests]
    # in a body the value is data: it stays as it is, and reaches no header
    assert any("campaign_id=C1" in b and "Bcc: attacker@example.com" in b for b in bodies)
    # a digest whose top alert carries CR/LF names it escaped in its subject
    row = {"rule": "campaign_roi_negative", "segment": "campaign_id=" + INJECTED, "day": AS_OF}
    unit = digest.Unit("k", "digest", ["ops"], AS_OF, rows=[row])
    assert unit.subject == (
        "[exops] ops digest 2026-09-30: 1 alert: campaign_roi_negative"
        " [campaign_id=C1\\r\\nBcc: attacker@example.com]"
    )
    for path in paths:
        message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
        assert message.get_all("Bcc") is None
        assert "\r" not in message["Subject"] and "\n" not in message["Subject"]
        assert "attacker@example.com" not in message["X-Exops-Envelope-To"]
        assert "attacker@example.com" not in message["To"]
        assert not any(line.lower().startswith("bcc:") for line in _raw_headers(path))


def test_csv_cells_are_never_formulas_and_numbers_stay_numbers(hostile) -> None:
    (mail,) = [m for m in read_mail(hostile["mail"]) if "Daily ops report" in m["Subject"]]
    attachments = {p.get_filename(): p.get_content() for p in mail.iter_attachments()}
    rows = list(csv.DictReader(io.StringIO(attachments["campaigns.csv"])))
    by_roi = {r["ROI"]: r for r in rows}
    assert by_roi["-12.5"]["Campaign"] == "'" + FORMULA
    assert by_roi["-0.75"]["Campaign"] == INJECTED  # not a formula: unchanged
    on_disk = hostile["var"] / "reports" / str(AS_OF) / "campaigns.csv"
    with on_disk.open(newline="") as f:
        assert list(csv.DictReader(f)) == rows


def test_an_alert_that_cannot_be_rendered_is_recorded_and_told_the_rest_goes_out_once(
    hostile,
) -> None:
    first, second, third = hostile["runs"]
    assert [w for w, _ in first.render_failures] == [
        f"alert traders_drop [all] on {AS_OF}",
        f"report {AS_OF} section nps",
    ]
    assert first.render_failures_told and not second.render_failures_told
    assert not first.errors and first.report_emailed
    # 5 of the sample + 2 hostile campaigns - traders_drop, in the ops digest and one
    # immediate risk alert
    assert (first.alerts_emailed, first.alert_mails) == (6, 2)
    assert (second.alerts_emailed, second.report_already_sent) == (0, True)
    assert hostile["second_mail"] == hostile["first_mail"]  # nothing at all the second time
    assert (third.alerts_emailed, third.alert_mails) == (1, 1) and not third.render_failures

    messages = read_mail(hostile["mail"])
    subjects = Counter(m["Subject"] for m in messages)
    assert all(n == 1 for n in subjects.values()), subjects  # nothing twice
    assert sum("Daily ops report" in s for s in subjects) == 1
    assert [s for s in subjects if "ops digest" in s] == [
        "[exops] ops digest 2026-09-30: 5 alerts: exchange_volume_drop",
        "[exops] ops digest 2026-09-30: 1 alert: traders_drop",
    ]
    digests = [m for m in messages if "ops digest" in m["Subject"]]
    assert sum("traders_drop" in text_of(m) for m in digests) == 1  # once, the third time

    (told,) = [m for m in messages if "could not be rendered" in m["Subject"]]
    assert told["To"] == "de@platform.test"
    body = text_of(told)
    assert "traders_drop" in body and "renderer bug for traders_drop" in body
    assert "nps section bug" in body
    (daily,) = [m for m in messages if "Daily ops report" in m["Subject"]]
    assert "nps.csv" not in {p.get_filename() for p in daily.iter_attachments()}
    assert "NPS by week" in daily.get_body(("html",)).get_content()
    assert "could not be rendered" in daily.get_body(("html",)).get_content()

    with psycopg.connect(hostile["url"]) as conn:
        row = conn.execute(
            "select render_error, render_failed_at is not null, claimed_at is not null,"
            " emailed_at is not null from publish.kpi_alerts where rule = 'traders_drop'"
        ).fetchone()
        sections = conn.execute(
            "select section_errors from publish.reports_sent where as_of = %s", (AS_OF,)
        ).fetchone()[0]
        told_rows = conn.execute(
            "select kind, emailed_at is not null from publish.notifications"
        ).fetchall()
        stuck = conn.execute(
            "select count(*) from publish.kpi_alerts where claimed_at is not null"
            " and emailed_at is null"
        ).fetchone()[0]
    # sent by the third run: the error cleared, the failure time kept as history
    assert row == (None, True, True, True)
    assert "nps section bug" in sections
    assert told_rows == [("render_failure", True)]
    assert stuck == 0  # no alert left claimed but unsent
