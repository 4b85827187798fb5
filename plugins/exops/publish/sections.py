"""The report's sections about alerts: the day's alerts with what moved (the same content
as the digests), those held, those retracted, the rule evaluations left out for a too small
sample, and the restated numbers. Rendered from plugins/exops/templates/, passed to
:func:`exops.publish.report.build`."""

from __future__ import annotations

from exops.publish import formatting as fmt
from exops.publish.alerts import NotEvaluated
from exops.publish.digest import item, retraction
from exops.publish.restatements import Restatement, tolerance_text
from exops.templating import render


def not_evaluated_view(items: list[NotEvaluated]) -> list[dict]:
    return [
        {
            "rule": n.rule,
            "segment": n.segment,
            "day": str(n.day),
            "sample": f"{fmt.number(n.sample)} {n.sample_metric}",
            "needed": f"at least {fmt.number(n.at_least)}",
        }
        for n in items
    ]


def render_sections(
    rows: list[dict],
    descriptions: dict[str, str],
    held: list[str],
    retracted_rows: list[dict],
    not_evaluated: list[NotEvaluated],
    restated: list[Restatement],
) -> tuple[list[str], list[str]]:
    """(HTML sections, text sections) for the report."""
    context = {
        "items": [item(r, descriptions) for r in rows],
        "held": held,
        "retracted": [retraction(r) for r in retracted_rows],
        "not_evaluated": not_evaluated_view(not_evaluated),
        "restated": [r.view() for r in restated],
        "rows": [r.view() for r in restated],
        "tolerance": tolerance_text(),
    }
    html = [
        render("_report_alerts.html.j2", **context),
        render("_report_restatements.html.j2", **context),
    ]
    return html, [render("_report_sections.txt.j2", **context)]
