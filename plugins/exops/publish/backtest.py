"""Replaying the alert rules over history, sending nothing: on which days each rule would
have fired, and how often that is per 90 days, so that a rule is tuned before it mails
anyone (``exops alerts backtest``).

Each day from ``first`` to ``last`` is evaluated as the rule evaluates it in a live run
(same baseline, known incidents, minimum change and sample), on the marts as they are now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import psycopg

from exops.publish.alerts import Alert, evaluate_rule
from exops.publish.baseline import Incident
from exops.publish.rules import Rule


@dataclass
class RuleBacktest:
    rule: str
    first: date
    last: date
    alerts: list[Alert] = field(default_factory=list)
    not_evaluated: int = 0

    @property
    def days(self) -> list[date]:
        return sorted({a.day for a in self.alerts})

    @property
    def span_days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def per_90_days(self) -> float:
        """Days fired per 90 days of history."""
        return len(self.days) * 90 / self.span_days

    def lines(self) -> list[str]:
        head = (
            f"{self.rule}: fired on {len(self.days)} day(s) of {self.span_days}, "
            f"{self.per_90_days:.1f} per 90 days"
        )
        if self.not_evaluated:
            head += f"; {self.not_evaluated} segment-day(s) not evaluated (sample too small)"
        out = [head]
        for day in self.days:
            segments = sorted({a.segment for a in self.alerts if a.day == day})
            values = [a for a in self.alerts if a.day == day]
            change = values[0].relative
            detail = "" if change is None else f" ({change * 100:+.0f}%)"
            shown = ", ".join(segments[:4]) + (" ..." if len(segments) > 4 else "")
            out.append(f"  {day} {day:%a}: {shown}{detail if len(values) == 1 else ''}")
        return out


def backtest(
    conn: psycopg.Connection,
    rules: list[Rule],
    first: date,
    last: date,
    incidents: list[Incident] = (),
) -> list[RuleBacktest]:
    """Each rule replayed on every day from ``first`` to ``last``."""
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    out = []
    for rule in rules:
        found = evaluate_rule(conn, rule, first, last, incidents, with_events=False)
        out.append(RuleBacktest(rule.name, first, last, found.alerts, len(found.not_evaluated)))
    return out
