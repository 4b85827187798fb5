"""Superset on the read-only role, end to end: `exops bi start` (what `make bi` runs) twice on
a freshly built warehouse, its REST API, and a real headless Chromium reading the dashboard.

Needs Superset in .venv-bi (`make bi-install`); the browser test also needs Debian's
chromium and chromedriver (`make browser` installs them as root). Each missing piece skips
the tests that need it, naming it. The screenshot lands in var/screenshots/.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import socket
import urllib.parse
import urllib.request
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

import psycopg
import pytest
import yaml

from exops import bi, bootstrap, transform
from exops.ingest import ingest
from exops.settings import PROJECT_ROOT
from exops.simulate import simulate

START = date(2026, 3, 2)
USERS, DAYS, SEED = 300, 21, 20260302
TITLE = "exops daily KPIs"
SCREENSHOT = PROJECT_ROOT / "var" / "screenshots" / "exops_daily_kpis.png"
MARTS_DIR = PROJECT_ROOT / "dbt_project" / "models" / "marts"

pytestmark = [
    pytest.mark.skipif(
        not (bi.BI_VENV / "bin" / "gunicorn").exists(),
        reason=f"Superset is not installed in {bi.BI_VENV}: run `make bi-install`",
    ),
    # Superset reads the marts as bi_reader: nothing here differs by PostgreSQL version
    pytest.mark.server_agnostic,
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def superset(warehouse_url: str, tmp_path_factory: pytest.TempPathFactory):
    """A small warehouse built as a deployment builds it, and Superset started on it twice."""
    mp = pytest.MonkeyPatch()
    password = secrets.token_urlsafe(12)
    mp.setenv("EXOPS_BI_READER_PASSWORD", secrets.token_urlsafe(12))
    mp.setenv("EXOPS_VAR_DIR", str(tmp_path_factory.mktemp("var")))
    mp.setenv("EXOPS_BI_PORT", str(_free_port()))
    mp.setenv("EXOPS_BI_ADMIN_USER", "ops-admin")
    mp.setenv("EXOPS_BI_ADMIN_PASSWORD", password)
    mp.delenv("EXOPS_BI_READER_URL", raising=False)
    mp.delenv("SUPERSET_SECRET_KEY", raising=False)
    try:
        bootstrap.init_warehouse(warehouse_url, bi_reader_password=True)
        with pytest.raises(bi.BIError, match=r"no marts yet: build them with `make run`"):
            bi.start()
        landing = tmp_path_factory.mktemp("landing")
        simulate(landing, USERS, DAYS, START, SEED)
        report = ingest(landing, url=warehouse_url)
        assert not [p for p in report.partitions if p.action == "failed"]
        assert transform.build(warehouse_url).success
        first = bi.start()
        second = bi.start()
        yield {"first": first, "second": second, "password": password, "url": warehouse_url}
    finally:
        bi.stop()
        mp.undo()


class Api:
    """Superset's REST API as the admin (JWT from /api/v1/security/login)."""

    def __init__(self, base: str, user: str, password: str) -> None:
        self.base = base.rstrip("/")
        body = {"username": user, "password": password, "provider": "db", "refresh": False}
        self.token = self._call("POST", "/api/v1/security/login", body)["access_token"]

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        headers = {"Content-Type": "application/json"}
        if getattr(self, "token", None):
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())

    def get(self, path: str, q: str | None = None) -> dict:
        """GET ``path``, with ``q`` (a rison query) quoted into its query string."""
        return self._call("GET", path + (f"?q={urllib.parse.quote(q)}" if q else ""))


@pytest.fixture(scope="module")
def api(superset) -> Api:
    return Api(superset["first"].url, "ops-admin", superset["password"])


def _mart_yaml() -> dict[str, dict[str, str]]:
    out = {}
    for path in MARTS_DIR.rglob("_*.yml"):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models") or []:
            out[model["name"]] = {
                c["name"]: " ".join(str(c.get("description", "")).split())
                for c in model.get("columns") or []
            }
    return out


def _as_of_volumes(url: str) -> tuple[date, Decimal, Decimal]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "select activity_date, volume_usd from marts.exchange_daily_kpis"
            " order by activity_date desc limit 2"
        ).fetchall()
    (as_of, volume), (_, previous) = rows
    return as_of, volume, previous


def test_make_bi_twice_gives_one_dashboard_with_every_chart(superset, api: Api) -> None:
    first, second = superset["first"], superset["second"]
    assert not first.already_running and second.already_running
    assert first.url.startswith("http://127.0.0.1:")
    assert not first.password_generated and first.admin_password == superset["password"]
    found = api.get(
        "/api/v1/dashboard/", "(filters:!((col:dashboard_title,opr:eq,value:'exops daily KPIs')))"
    )
    assert found["count"] == 1, found
    (dashboard,) = found["result"]
    assert first.dashboard_url.endswith(f"/superset/dashboard/{dashboard['slug']}/")
    charts = api.get(f"/api/v1/dashboard/{dashboard['id']}/charts")["result"]
    titles = {c["slice_name"] for c in charts}
    assert {
        "Volume (USD)",
        "Trades",
        "Traders",
        "Active users",
        "Volume by product line (USD per day)",
        "Users by tier",
        "Acquisition funnel by channel (registrations with a complete 7-day window)",
        "Campaign scoreboard (incremental vs. a control group)",
        "NPS by product line (weekly)",
        "Risk alerts by type",
    } <= titles
    assert len(charts) == second.provisioned["charts"] == 13
    assert api.get("/api/v1/chart/", "(page_size:100)")["count"] == 13


def test_a_dataset_per_mart_with_the_dbt_column_descriptions(api: Api) -> None:
    expected = _mart_yaml()
    datasets = api.get("/api/v1/dataset/", "(page_size:100)")["result"]
    assert sorted(d["table_name"] for d in datasets) == sorted(expected)
    assert {d["schema"] for d in datasets} == {"marts"}
    for d in datasets:
        detail = api.get(f"/api/v1/dataset/{d['id']}")["result"]
        described = {c["column_name"]: c["description"] for c in detail["columns"]}
        assert described == expected[d["table_name"]], d["table_name"]


def test_the_connection_is_bi_reader_and_read_only(superset, api: Api) -> None:
    (database,) = api.get("/api/v1/database/")["result"]
    detail = api.get(f"/api/v1/database/{database['id']}/connection")["result"]
    assert detail["sqlalchemy_uri"].startswith("postgresql+psycopg2://bi_reader:")
    assert superset["first"].reader_url.startswith("postgresql://bi_reader@")
    assert detail["allow_dml"] is False and detail["allow_file_upload"] is False


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


def _usd(text: str) -> Decimal:
    match = re.fullmatch(r"\$([\d,]+\.\d\d)", text.strip())
    assert match, f"not a USD amount with cents: {text!r}"
    return Decimal(match.group(1).replace(",", ""))


def test_the_dashboard_in_a_browser_shows_the_as_of_volume_of_the_mart(superset) -> None:
    chromium, driver_path = _chromium()
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed in .venv: run `make install`"
    )
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    as_of, volume, previous = _as_of_volumes(superset["url"])
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1600,2500")
    browser = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        started = superset["first"]
        browser.get(started.url + "login/")
        wait = WebDriverWait(browser, 60)
        wait.until(lambda b: b.find_elements(By.ID, "username"))
        browser.find_element(By.ID, "username").send_keys(started.admin_user)
        browser.find_element(By.ID, "password").send_keys(superset["password"])
        browser.find_element(By.XPATH, "//button[normalize-space()='Sign in']").click()
        wait.until(lambda b: "/login" not in b.current_url)
        browser.get(started.dashboard_url)
        headline = '[data-test-chart-name="Volume (USD)"] .big_number'
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, f"{headline} .header-line"))
        # every chart has drawn (or failed) before the picture is taken
        wait.until(
            lambda b: (
                len(b.find_elements(By.CSS_SELECTOR, ".slice_container")) == 13
                and not b.find_elements(
                    By.CSS_SELECTOR, ".loading, [data-test='loading-indicator']"
                )
            )
        )
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(SCREENSHOT))
        shown = browser.find_element(By.CSS_SELECTOR, f"{headline} .header-line").text
        change = browser.find_element(By.CSS_SELECTOR, f"{headline} .subheader-line").text
        errors = browser.find_elements(
            By.CSS_SELECTOR, "[data-test='error-message'], .alert-danger"
        )
        assert [e.text for e in errors] == []
    finally:
        browser.quit()
    assert _usd(shown) == volume.quantize(Decimal("0.01"), ROUND_HALF_EVEN), (as_of, shown)
    expected_change = f"{(volume - previous) / previous:+.1%} day over day"
    assert change.replace("\u2212", "-") == expected_change
    assert as_of == superset["first"].as_of
    assert SCREENSHOT.stat().st_size > 50_000


def test_a_chart_dropped_from_the_code_is_deleted_and_comes_back(superset, api, tmp_path) -> None:
    text = (PROJECT_ROOT / "bi" / "dashboards" / "exops_daily_kpis.yaml").read_text()
    row = "  - height: 40\n    charts:\n      - {chart: campaign_scoreboard, width: 12}\n"
    start, end = text.index("  campaign_scoreboard:\n"), text.index("  nps_by_product_line:\n")
    assert row in text
    dropped_text = text.replace(row, "").replace(text[start:end], "")
    (tmp_path / "exops_daily_kpis.yaml").write_text(dropped_text)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXOPS_BI_DASHBOARDS_DIR", str(tmp_path))
        dropped = bi.start()
    assert dropped.provisioned["stale_charts_deleted"] == 1
    assert dropped.provisioned["dashboards"][0]["charts"] == 12
    names = {c["slice_name"] for c in api.get("/api/v1/chart/", "(page_size:100)")["result"]}
    assert len(names) == 12 and not any(n.startswith("Campaign scoreboard") for n in names)
    again = bi.start()
    assert again.provisioned["stale_charts_deleted"] == 0
    assert again.provisioned["dashboards"] == [
        {
            "id": dropped.provisioned["dashboards"][0]["id"],
            "slug": "exops-daily-kpis",
            "title": TITLE,
            "charts": 13,
        }
    ]


def test_stop_stops_it(superset) -> None:
    started = superset["first"]
    assert bi.running_pid() is not None
    assert bi.stop() is True
    assert bi.running_pid() is None
    with pytest.raises(OSError):
        urllib.request.urlopen(started.url + "health", timeout=5)
    assert bi.stop() is False
