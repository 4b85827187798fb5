"""Publishing on a real warehouse and a real SMTP server: alerts and the report reach the
right people once, with the marts' numbers, escaped, and without personal data."""

from __future__ import annotations

import psycopg
import pytest
from test_publish_support import (
    AS_OF,
    EMAIL_RE,
    PHONE_RE,
    USER_EMAILS,
    build_sample,
    mail_environment,
    read_mail,
    text_of,
)

from exops.publish import publish
from exops.quality import validate

ADDRESSES = {
    "exops@platform.test",
    "ops1@platform.test",
    "ops2@platform.test",
    "risk@platform.test",
}


@pytest.fixture(scope="module")
def published(warehouse_url, tmp_path_factory):
    build_sample(warehouse_url)
    var = tmp_path_factory.mktemp("var")
    recipients = {
        "ops": "ops1@platform.test, ops2@platform.test",
        "risk": "risk@platform.test",
        "data_eng": "de@platform.test",
    }
    with mail_environment(var, recipients) as mail:
        assert validate(warehouse_url).passed
        result = publish(warehouse_url)
        yield {"url": warehouse_url, "var": var, "mail": mail, "result": result}


def _by_subject(messages, fragment):
    found = [m for m in messages if fragment in m["Subject"]]
    assert found, f"no mail with {fragment!r} in {[m['Subject'] for m in messages]}"
    return found


def test_alerts_go_in_one_digest_per_audience_and_critical_risk_at_once(published):
    messages = read_mail(published["mail"])
    alerts = [
        m
        for m in messages
        if m["Subject"].startswith(("[exops KPI alert]", "[exops] ops digest", "[exops] risk"))
    ]
    subjects = sorted(m["Subject"] for m in alerts)
    assert subjects == [
        "[exops KPI alert] critical: high_severity_risk_alert [alert_type=self_trade]"
        " on 2026-09-30",
        "[exops] ops digest 2026-09-30: 4 alerts: exchange_volume_drop",
    ]
    (risk,) = _by_subject(alerts, "high_severity_risk_alert")
    assert risk["To"] == "risk@platform.test, ops1@platform.test, ops2@platform.test"
    (digest,) = _by_subject(alerts, "ops digest")
    assert digest["To"] == "ops1@platform.test, ops2@platform.test"
    body = digest.get_body(("plain",)).get_content()
    # ranked: the two alerts with USD at stake first (volume, then traders), then the rest
    order = [
        "1. exchange_volume_drop on 2026-09-30 (critical)",
        "2. traders_drop on 2026-09-30 (warning)",
        "3. nps_drop on 2026-09-28 (warning)",
        "4. campaign_roi_negative [campaign_id=C1] on 2026-09-28 (warning)",
    ]
    assert [body.index(line) for line in order] == sorted(body.index(line) for line in order)
    assert "volume_usd of exchange_daily_kpis (all) on 2026-09-30: 400,000" in body
    assert "at stake: 615,000 USD of volume" in body
    assert "what moved: product_id BTC-USDT: 1,015,000 -> 400,000 (-60.6%, 100% of the change)" in (
        body
    )
    # the planned events of that day are named
    assert "campaign C2 (trading_competition, all product lines) started on 2026-09-30" in body
    assert "product BTC-USDT" not in body.split("what moved")[0]
    assert "listed on 2026-09-30" in body
    risk_body = text_of(risk)
    assert "alerts of risk_alerts (severity=high, alert_type=self_trade) on 2026-09-30: 2" in (
        risk_body
    )
    with psycopg.connect(published["url"]) as conn:
        rows = conn.execute(
            "select rule, segment, day, value, emailed_at is not null from publish.kpi_alerts"
            " order by rule"
        ).fetchall()
        deliveries = conn.execute(
            "select audience, count(*) from publish.alert_deliveries group by 1 order by 1"
        ).fetchall()
    assert len(rows) == 5 and all(r[4] for r in rows)
    assert ("campaign_roi_negative", "campaign_id=C1", AS_OF.replace(day=28)) == rows[0][:3]
    assert float(rows[0][3]) == -0.5
    assert deliveries == [("ops", 5), ("risk", 1)]
    assert published["result"].alerts_emailed == 5 and published["result"].alert_mails == 2
    # a 10-user cohort's retention and a funnel day of 0 registrations are not evaluated
    assert published["result"].not_evaluated == 2


def test_report_email_has_the_marts_numbers_charts_and_csvs(published):
    (report,) = _by_subject(read_mail(published["mail"]), "[exops] Daily ops report 2026-09-30")
    assert report["To"] == "ops1@platform.test, ops2@platform.test"
    plain = report.get_body(("plain",)).get_content()
    # 400,000 today vs 1,000,000 + (day % 3) * 10,000 = 1,020,000 on the 29th and the 23rd
    assert "Volume (USD): 400,000 (DoD -60.8%, WoW -60.8%)" in plain
    assert "Traders: 40 (DoD -60.4%, WoW -60.4%)" in plain
    html_part = report.get_body(("html",))
    html = html_part.get_content()
    attachments = {p.get_filename(): p for p in report.iter_attachments()}
    csvs = {n for n in attachments if n.endswith(".csv")}
    assert csvs == {
        "headline_kpis.csv",
        "products_by_stage.csv",
        "product_stage_changes.csv",
        "tier_mix.csv",
        "tier_movements.csv",
        "funnel.csv",
        "retention.csv",
        "campaigns.csv",
        "feedback.csv",
        "nps.csv",
        "risk_alerts.csv",
    }
    images = [p for p in report.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 3
    for image in images:
        cid = image["Content-ID"].strip("<>")
        assert f'src="cid:{cid}"' in html
        assert image.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    risk_csv = attachments["risk_alerts.csv"].get_content()
    assert risk_csv.splitlines() == [
        "Type,Severity,2026-09-30,Last 7 days",
        "self_trade,high,2,2",
        "volume_spike,medium,1,1",
    ]
    tier_csv = attachments["tier_mix.csv"].get_content()
    assert "active,<5," in tier_csv  # 3 active users: suppressed
    assert "new,9," in tier_csv


def test_report_files_beside_each_other(published):
    out = published["var"] / "reports" / "2026-09-30"
    assert published["result"].report_path == out / "report.html"
    html = (out / "report.html").read_text()
    for name in ("volume.png", "users.png", "tiers.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
        assert f'src="{name}"' in html
    assert (out / "headline_kpis.csv").read_text().startswith("KPI,2026-09-30,Previous day")
    # the digests' content, and what was left out for too small a sample
    assert "<h2>Alerts of the day</h2>" in html
    assert "<td>product_id BTC-USDT</td>" in html
    assert "<td>week1_retention_drop</td><td>all</td><td>2026-09-14</td>" in html
    assert "<h2>Restated numbers</h2>" in html


def test_malicious_values_are_escaped(published):
    html = (published["var"] / "reports" / "2026-09-30" / "report.html").read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    for message in read_mail(published["mail"]):
        for part in message.walk():
            if part.get_content_type() == "text/html":
                assert "<script>" not in part.get_content()


def test_no_personal_data_in_any_mail_or_report(published):
    texts = [text_of(m) for m in read_mail(published["mail"])]
    texts.append((published["var"] / "reports" / "2026-09-30" / "report.html").read_text())
    texts += [p.read_text() for p in (published["var"] / "reports" / "2026-09-30").glob("*.csv")]
    for text in texts:
        assert set(EMAIL_RE.findall(text)) <= ADDRESSES
        assert PHONE_RE.findall(text) == []
        assert not any(e in text for e in USER_EMAILS)
        assert "u_0000" not in text  # no user ids: risk subjects, dormant targets


def test_a_retried_publish_sends_nothing_twice(published):
    before = len(read_mail(published["mail"]))
    again = publish(published["url"])
    assert (again.alerts_new, again.alerts_emailed) == (0, 0)
    assert again.alerts_found == 5 and again.alert_mails == 0
    assert again.report_already_sent and not again.report_emailed
    assert len(read_mail(published["mail"])) == before


def test_an_alert_claimed_by_a_crashed_run_is_not_resent(published):
    """A run that crashed after claiming may have sent: it is reported, never re-sent."""
    with psycopg.connect(published["url"], autocommit=True) as conn:
        conn.execute(
            "insert into publish.kpi_alerts (rule, segment, day, value, baseline, message,"
            " severity, recipients, as_of, message_id, claimed_at)"
            " values ('traders_drop', 'all', '2026-09-29', 1, 2, 'm', 'warning', 'ops',"
            " '2026-09-30', '<crash@exops>', now())"
        )
    before = len(read_mail(published["mail"]))
    again = publish(published["url"])
    assert again.alerts_unconfirmed == 1
    assert len(read_mail(published["mail"])) == before
