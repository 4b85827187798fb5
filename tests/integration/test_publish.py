"""Publishing on a real warehouse and a real SMTP server: alerts and the report reach the
right people once, with the marts' numbers, escaped, and without personal data."""

from __future__ import annotations

import shutil

import psycopg
import pytest
from test_publish_support import (
    AS_OF,
    EMAIL_RE,
    PHONE_RE,
    USER_EMAILS,
    build_sample,
    html_rows,
    html_text,
    mail_environment,
    read_mail,
    text_of,
)

from exops.publish import publish
from exops.quality import validate
from exops.settings import PROJECT_ROOT

# not run again on PostgreSQL 15 (make test-pg15): rendering, mail and the at-most-once outbox
# over plain tables
pytestmark = pytest.mark.server_agnostic

SCREENSHOT = PROJECT_ROOT / "var" / "screenshots" / "report_phone.png"
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
    # the sparkline of the plain text: 13 steady days, then 400k of 1,020,000 (zero-based)
    assert "Volume (USD): 400,000 (DoD -60.8%, WoW -60.8%)  █████████████▄\n" in plain
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
    images = {p.get_filename(): p for p in report.walk() if p.get_content_type() == "image/png"}
    assert set(images) == {"volume.png", "users.png", "tiers.png"}
    for name, image in images.items():
        assert image.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
        assert name in html  # the page names the charts that come with it
    # the page draws what it shows in HTML (nothing to fetch): the headline card of volume,
    # its fall coloured as bad news, and the volume of each of the last 30 days
    assert ">Volume (USD)</div>" in html and ">$400k</div>" in html
    assert "▼&nbsp;60.8%" in html and "#a40e26" in html
    assert 'title="09-30: $400k"' in html and 'title="09-01: $1.0M"' in html
    assert "<img" not in html and "cid:" not in html
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
        assert name in html
    assert (out / "headline_kpis.csv").read_text().startswith("KPI,2026-09-30,Previous day")
    # the digests' content, and what was left out for too small a sample
    shown, rows = html_text(html), html_rows(html)
    assert "Alerts of the day" in shown
    assert any(row[:1] == ["product_id BTC-USDT"] for row in rows)
    assert any(row[:3] == ["week1_retention_drop", "all", "2026-09-14"] for row in rows)
    assert "Restated numbers" in shown


def test_the_report_email_is_the_report_file(published):
    """One render: the email's HTML part is, character for character, the written file (a
    text part travels with CRLF line ends, as MIME has it)."""
    (report,) = _by_subject(read_mail(published["mail"]), "[exops] Daily ops report 2026-09-30")
    written = (published["var"] / "reports" / "2026-09-30" / "report.html").read_text()
    assert report.get_body(("html",)).get_content().replace("\r\n", "\n") == written
    assert "Headline" in written and "Retention, all channels" in written
    assert len(written.encode()) < 102_000  # Gmail clips a message's HTML beyond ~102 kB


def test_small_samples_are_flagged_not_shown(published):
    html = (published["var"] / "reports" / "2026-09-30" / "report.html").read_text()
    # retention cohorts of 10 users: no precise rate shown (their week 1: 50%, 50%, 20%)
    retention = html[html.index(">Retention, all channels") : html.index(">Campaign scoreboard")]
    assert retention.count("n&lt;30 · not significant") == 3
    assert "%</td>" not in retention
    # a campaign of 40 participants: its ROI is shown
    assert ">-50.0%</td>" in html
    # 100 NPS responses a week: enough, the scores are shown (+40 and +10)
    assert "n&lt;100" not in html
    assert ">+40<" in html and ">+10<" in html


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


def _chromium() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        missing = " and ".join(
            n for n, p in (("chromium", chromium), ("chromedriver", driver)) if not p
        )
        pytest.skip(
            f"browser test skipped: {missing} not installed; `make browser` installs Debian's"
            " chromium and chromium-driver (apt-get, as root)"
        )
    return chromium, driver


def test_the_report_reads_on_a_phone_in_a_real_browser(published):
    """Headless Chromium as a 375 px phone: the page never scrolls sideways (wide tables scroll
    in their own box) and the headline KPI cards are on screen, side by side."""
    chromium, driver_path = _chromium()
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed in .venv: run `make install`"
    )
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    page = published["var"] / "reports" / "2026-09-30" / "report.html"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_experimental_option(
        "mobileEmulation", {"deviceMetrics": {"width": 375, "height": 812, "pixelRatio": 2.0}}
    )
    browser = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        browser.get(page.as_uri())
        viewport, scroll_width = browser.execute_script(
            "return [window.innerWidth, document.documentElement.scrollWidth]"
        )
        cards = {}
        for label in ("Volume (USD)", "Fees (USD)", "Traders", "Risk alerts"):
            (element,) = browser.find_elements(
                By.XPATH, f"//div[normalize-space()={label!r}]/following-sibling::div[1]"
            )
            cards[label] = (element.is_displayed(), element.text, element.rect)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(SCREENSHOT))
    finally:
        browser.quit()
    assert viewport == 375
    assert scroll_width <= viewport, f"the page is {scroll_width} px wide on a 375 px phone"
    assert cards["Volume (USD)"][:2] == (True, "$400k")
    assert cards["Traders"][:2] == (True, "40")
    for shown, _, rect in cards.values():
        assert shown and rect["x"] >= 0 and rect["x"] + rect["width"] <= viewport
    # two cards to a row: volume and fees side by side, above the fold
    volume, fees = cards["Volume (USD)"][2], cards["Fees (USD)"][2]
    assert volume["y"] == fees["y"] and volume["x"] < fees["x"] and volume["y"] < 812
