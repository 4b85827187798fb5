"""What publishing posts to the audiences' webhooks (:mod:`exops.webhook`), beside email.

- every KPI alert stored by the last week's publish runs, to the webhooks of its audiences
  (key: the alert's rule, segment and day, as its email);
- the report of the as-of date, a short notice to ``ops`` (with the provisional banner);
- the day's source-health problems, to ``data_eng``.

Each (key, audience) is posted at most once, whatever the email channel did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import psycopg

from exops import webhook
from exops.publish import provisional


@dataclass
class Posted:
    posts: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, delivery: webhook.Delivery) -> None:
        self.posts += len(delivery.posted)
        self.errors.extend(delivery.errors)


def post_all(conn: psycopg.Connection, as_of: date, banner_text: str | None) -> Posted:
    """Post the alerts, the report notice and the source-health notice of ``as_of``."""
    done = Posted()
    rows = conn.execute(
        "select rule, segment, day, severity, message, recipients from publish.kpi_alerts"
        " where as_of between %s and %s order by day, alert_id",
        (as_of - timedelta(days=7), as_of),
    ).fetchall()
    for rule, segment, day, severity, message, recipients in rows:
        scope = "" if segment == "all" else f" [{segment}]"
        done.add(
            webhook.send_once(
                conn,
                f"kpi_alert|{rule}|{segment}|{day}",
                recipients.split(","),
                "kpi_alert",
                f"exops KPI alert, {severity}: {rule}{scope} on {day}",
                message,
            )
        )
    text = f"The daily ops report of {as_of} (UTC) is out; the full report went by email."
    if banner_text:
        text += "\n" + banner_text
    done.add(
        webhook.send_once(
            conn, f"report|{as_of}", ["ops"], "report", f"exops daily ops report {as_of}", text
        )
    )
    problems = provisional.problems(conn, as_of)
    if problems:
        lines = [
            f"{p.status} {p.source}/{p.entity} {p.check}: {p.detail}"
            + (" (holds its marts' alerts)" if p.holds else "")
            for p in problems
        ]
        done.add(
            webhook.send_once(
                conn,
                f"source_health|{as_of}",
                ["data_eng"],
                "source_health",
                f"exops source health {as_of}: {len(problems)} problem(s)",
                "\n".join(lines),
            )
        )
    return done
