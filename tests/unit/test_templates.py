"""The templates of plugins/exops/templates/ (no services): every one renders with what its
code passes, names nothing it is not given (StrictUndefined), and escapes what comes from
data in HTML while plain text keeps it as it is.

A new template needs a sample context in CONTEXTS: the first test fails until it has one.
"""

from __future__ import annotations

from datetime import date, timedelta

import jinja2
import pytest

from exops.publish import formatting as fmt
from exops.publish.report import HEADLINE, Card, Change, Column, Report, Table, trend
from exops.templating import environment, render, template_names

HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
AS_OF = date(2026, 9, 30)


def sample_report(product: str = HOSTILE) -> Report:
    days = [AS_OF - timedelta(days=13 - i) for i in range(14)]
    cards = [
        Card(
            kpi.label,
            "$400k",
            "400,000",
            [Change("DoD", "60.8%", "▼", fmt.tone(-60.8, kpi.better))],
            trend([(d, 1_000_000 if d < AS_OF else 400_000) for d in days], kpi.unit),
        )
        for kpi in HEADLINE
    ]
    cards.append(
        Card("NPS", "–", "–", [], None, flag="not significant", note="22 answers (fewer than 100)")
    )
    headline = Table(
        "headline_kpis",
        "Headline KPIs",
        [Column("KPI", "kpi", kind="text"), Column("Value", "value", kind="kpi")],
        [
            {"kpi": k.label, "value": 1, "unit": k.unit, "shown": "1", "dod": "+1.0%"}
            | {"wow": "–", "trend": "▁▂▃"}
            for k in HEADLINE
        ],
    )
    products = Table(
        "products",
        "Products",
        [Column("Product", "product_id", kind="text"), Column("Traders", "traders", True)],
        [{"product_id": product, "traders": 3}],
    )
    nps = Table(
        "nps",
        "NPS",
        [
            Column("Responses", "responses"),
            Column("NPS", "nps", kind="score", sample=("responses", 100)),
        ],
        [{"responses": 22, "nps": 40}],
    )
    broken = Table("broken", "A broken section", [], [], error="boom")
    report = Report(AS_OF, [headline, products, nps, broken], cards=cards)
    report.charts = {"volume.png": b"\x89PNG"}
    report.volume_chart = trend([(d, 1.0) for d in days], "usd", height=72)
    report.failures = [(f"report {AS_OF} section broken", "RuntimeError: boom")]
    report.render_sections()
    return report


def _digest() -> dict:
    return {
        "subject": f"[exops] ops digest {AS_OF}",
        "heading": f"ops digest {AS_OF}",
        "items": [
            {
                "title": f"exchange_volume_drop on {AS_OF}",
                "rule": "exchange_volume_drop",
                "severity": "critical",
                "day": str(AS_OF),
                "message": f"volume_usd of exchange_daily_kpis (product_id={HOSTILE}) fell",
                "description": f"volume dropped {HOSTILE}",
                "before_after": "$4.1M -> $2.0M (-51.2%)",
                "stake": "2.1M USD of volume",
                "movers": [
                    {
                        "dimension": "product",
                        "segment": HOSTILE,
                        "before": "1.9M",
                        "after": "0.1M",
                        "change": "-94.7%",
                        "share": "86%",
                    }
                ],
            }
        ],
        "retracted": [{"title": f"traders_drop on {AS_OF}", "note": f"restated {HOSTILE}"}],
        "footer": "Sent once per alert and audience by exops.",
    }


def _dq() -> dict:
    return {
        "run_id": "20260930T000000-abc",
        "as_of": AS_OF,
        "failures": [
            {
                "suite": "exchange_daily_kpis",
                "expectation": "trades reconcile",
                "observed": '{"unexpected_rows": 1}',
                "examples": [f'{{"product_id": "{HOSTILE}"}}'],
            }
        ],
        "warnings": [{"suite": "s", "expectation": "e", "observed": HOSTILE}],
        "data_docs": "var/quality/data_docs/index.html",
    }


def _source_health() -> dict:
    from exops.publish.provisional import SourceProblem

    return {
        "day": AS_OF,
        "checked_at": "2026-10-01 08:00 UTC",
        "problems": [
            SourceProblem("crm", "users", "freshness", "error", f"late {HOSTILE}", True, ("m",))
        ],
        "marts": ["acquisition_funnel"],
        "held": 2,
    }


CONTEXTS = {
    "report.html.j2": lambda: sample_report().context(),
    "report.txt.j2": lambda: sample_report().context(),
    "alert_digest.html.j2": _digest,
    "alert_digest.txt.j2": _digest,
    "data_quality.html.j2": _dq,
    "data_quality.txt.j2": _dq,
    "stage_failure.txt.j2": lambda: {
        "stage": "transform",
        "dag_id": "exops_transform",
        "run_id": "manual__x",
        "task_id": "dbt_build",
        "log_location": "var/logs/x.log",
        "error": f"RuntimeError: {HOSTILE}",
        "recorded_locally": True,
    },
    "render_failures.txt.j2": lambda: {
        "as_of": AS_OF,
        "failures": [(f"alert traders_drop [{HOSTILE}]", "RuntimeError: bug")],
    },
    "source_health_email.html.j2": _source_health,
    "source_health_email.txt.j2": _source_health,
    "publish_deadline.txt.j2": lambda: {
        "loaded": AS_OF,
        "due": "2026-10-02 06:00",
        "hours": "30",
        "published": None,
    },
}


def test_every_template_has_a_sample_context() -> None:
    assert sorted(template_names()) == sorted(CONTEXTS)


@pytest.mark.parametrize("name", sorted(CONTEXTS))
def test_every_template_renders_and_escapes_data_in_html(name: str) -> None:
    text = render(name, **CONTEXTS[name]())
    if name.endswith(".html.j2"):
        assert HOSTILE not in text and ESCAPED in text
        assert text.startswith("<!doctype html>") and "<style" not in text
        assert "<script" not in text.lower()
    else:
        assert "&lt;" not in text and "<" + "/" not in text.replace(HOSTILE, "")
        if name not in ("publish_deadline.txt.j2", "report.txt.j2"):  # no value from data
            assert HOSTILE in text  # plain text shows the value as it is


@pytest.mark.parametrize("name", sorted(CONTEXTS))
def test_a_template_given_less_than_it_names_fails(name: str) -> None:
    """StrictUndefined: each name a template uses must be passed, or rendering raises."""
    context = CONTEXTS[name]()
    for key in context:
        partial = {k: v for k, v in context.items() if k != key}
        try:
            render(name, **partial)
        except jinja2.UndefinedError as exc:
            assert key in str(exc)
            return
    pytest.fail(f"{name} rendered with any one name left out: it uses none of {list(context)}")


def test_the_environment_escapes_html_and_not_text() -> None:
    env = environment()
    assert isinstance(env.undefined, type) and issubclass(env.undefined, jinja2.StrictUndefined)
    assert env.autoescape("x.html.j2") and not env.autoescape("x.txt.j2")
    assert env.from_string("{{ v }}").render(v="<5") == "&lt;5"


def test_the_report_page_flags_small_samples_and_colours_by_meaning() -> None:
    report = sample_report()
    html = report.html()
    assert "n&lt;100 · not significant" in html and ">+40<" not in html
    assert ">&lt;5</td>" in html  # 3 traders: suppressed
    # the risk-alert card's fall is good news, the volume card's bad news
    risk = html[html.index(">Risk alerts</div>") :][:1500]
    volume = html[html.index(">Volume (USD)</div>") :][:1500]
    assert "#116329" in risk and "#a40e26" not in risk
    assert "#a40e26" in volume and "#116329" not in volume
    assert "could not be rendered" in html and "A broken section" in html
    text = report.text()
    assert "NPS (22 answers (fewer than 100)): not significant" in text
    assert "report 2026-09-30 section broken" in text


@pytest.mark.parametrize(
    ("change", "better", "tone"),
    [
        (5.0, "up", "good"),
        (-5.0, "up", "bad"),
        (5.0, "down", "bad"),
        (-5.0, "down", "good"),
        (5.0, None, "neutral"),
        (0.4, "up", "steady"),
        (None, "up", "steady"),
    ],
)
def test_a_change_is_judged_by_what_the_kpi_means(change, better, tone) -> None:
    assert fmt.tone(change, better) == tone


def test_headline_kpis_say_which_way_is_good_news() -> None:
    better = {k.key: k.better for k in HEADLINE}
    assert better["fees_usd"] == "up" and better["risk_alerts"] == "down"
    assert better["withdrawals_usd"] is None


def test_a_trend_is_zero_based_and_hides_small_user_counts() -> None:
    days = [AS_OF - timedelta(days=2 - i) for i in range(3)]
    t = trend(list(zip(days, [100, 50, 3], strict=True)), user_count=True, height=20)
    assert [b.height for b in t.bars] == [20, 10, 0]  # 3 users: no bar
    assert t.text == "█▅ " and t.bars[-1].title == "09-30: <5"
