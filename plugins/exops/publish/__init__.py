"""Publishing: KPI alert emails and the daily ops report, only after validation passed.

``publish(url, as_of)`` refuses unless the latest validation run of that as-of date passed,
then evaluates ``config/alert_rules.yaml`` (:mod:`~exops.publish.alerts`), lists the numbers
restated since they were published and retracts the alerts they undo
(:mod:`~exops.publish.restatements`), stores the new alerts with what moved, and sends one
digest per audience (:mod:`~exops.publish.digest`), then writes the report under
var/reports/<as-of>/ (with the same alerts, the restatements, and the evaluations left out
for a too small sample) and emails it. Rerunning it is safe: see
:mod:`exops.outbox` for how each mail goes out at most once.

Each alert and each report section is rendered on its own: one that cannot be rendered
(a bad value, a bug) is recorded, told to data engineers once
(:mod:`exops.notify`) and left out, and everything else still goes out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

log = logging.getLogger(__name__)


class PublishRefused(RuntimeError):
    """The data for this as-of date has not passed validation; nothing was published."""


class PublishError(RuntimeError):
    """Publishing ran but some mail could not be sent; a rerun sends only what is missing."""


@dataclass
class PublishResult:
    as_of: date
    alerts_found: int = 0
    alerts_new: int = 0
    alerts_emailed: int = 0
    alerts_unconfirmed: int = 0
    alert_mails: int = 0
    alerts_retracted: int = 0
    not_evaluated: int = 0
    restated: int = 0
    alerts_held: int = 0  # marts provisional: inputs stale or anomalous that day
    alerts_released: int = 0  # held earlier, stored now that their inputs are complete
    provisional_sources: list[str] = field(default_factory=list)
    source_health_told: bool = False
    webhook_posts: int = 0
    report_path: Path | None = None
    report_emailed: bool = False
    report_already_sent: bool = False
    errors: list[str] = field(default_factory=list)
    # (what, error) of alerts and report sections that could not be rendered
    render_failures: list[tuple[str, str]] = field(default_factory=list)
    render_failures_told: bool = False

    def summary(self) -> str:
        report = (
            "emailed"
            if self.report_emailed
            else "already sent"
            if self.report_already_sent
            else "NOT sent"
        )
        text = (
            f"publish {self.as_of}: {self.alerts_found} alert(s), {self.alerts_new} new, "
            f"{self.alerts_emailed} emailed in {self.alert_mails} mail(s), "
            f"{self.alerts_unconfirmed} unconfirmed, {self.alerts_held} held, "
            f"{self.alerts_released} released, {self.alerts_retracted} retracted; "
            f"{self.not_evaluated} not evaluated (sample too small); "
            f"{self.restated} restated number(s); "
            f"report {self.report_path} {report}"
        )
        from exops.mail import header_text  # one line each: values may hold CR/LF

        text += "".join(f"\n  - {e}" for e in self.errors)
        return text + "".join(
            f"\n  - not rendered: {header_text(what)}: {header_text(error)}"
            for what, error in self.render_failures
        )


def check_validation_passed(conn, as_of: date) -> str:
    """The run id of the latest validation of ``as_of``; raises PublishRefused unless passed."""
    # the gate's tables are the gate's to create: before its first run there are none
    row = None
    if conn.execute("select to_regclass('quality.validation_runs')").fetchone()[0] is not None:
        row = conn.execute(
            "select run_id, passed from quality.validation_runs where as_of = %s"
            " order by finished_at desc limit 1",
            (as_of,),
        ).fetchone()
    if row is None:
        raise PublishRefused(
            f"no validation run for as-of {as_of}: run `exops validate` before publishing"
        )
    run_id, passed = row
    failed = conn.execute(
        "select suite || ': ' || expectation from quality.validation_results"
        " where run_id = %s and severity = 'critical' and not success order by 1",
        (run_id,),
    ).fetchall()
    if not passed or failed:
        names = "; ".join(r[0] for r in failed) or "see quality.validation_results"
        raise PublishRefused(
            f"the latest validation run {run_id} of as-of {as_of} failed, nothing was "
            f"published: {names}"
        )
    return run_id


def publish(
    url: str | None = None, as_of: date | None = None, rules_path: Path | str | None = None
) -> PublishResult:
    """Alerts and the daily report for ``as_of`` (default: the latest loaded date).

    Runs as the publisher (``url`` defaults to ``EXOPS_PUBLISHER_URL``, see
    :func:`exops.warehouse.stage_url`): it reads the marts and the gate's results.
    """
    from exops import notify, outbox, warehouse
    from exops.mail import MailConfigError, SendError, mail_settings
    from exops.publish import (
        alerts,
        channels,
        digest,
        provisional,
        report,
        restatements,
        sections,
        store,
    )
    from exops.publish.baseline import load_incidents
    from exops.publish.rules import load_rules
    from exops.quality.asof import resolve_as_of

    rules = load_rules(rules_path)
    incidents = load_incidents()
    settings = mail_settings()
    with warehouse.connection(url or warehouse.stage_url("publisher"), autocommit=True) as conn:
        store.ensure_publish_tables(conn)
        as_of = resolve_as_of(conn, as_of)
        check_validation_passed(conn, as_of)
        result = PublishResult(as_of)

        # alerts of marts whose inputs were stale that day wait for them (provisional)
        result.alerts_released, _ = provisional.release_held(conn, rules, as_of)
        evaluation = alerts.evaluate(conn, rules, as_of, incidents)
        result.alerts_found = len(evaluation.alerts)
        result.not_evaluated = len(evaluation.not_evaluated)
        # what changed since it was published, before today's numbers are kept
        restated = restatements.detect(conn, as_of)
        result.restated = len(restated)
        result.alerts_retracted = restatements.retract(conn, rules, restated, incidents, as_of)
        found, held = provisional.hold(conn, evaluation.alerts, rules, as_of)
        result.alerts_held = len(held)
        result.alerts_new = digest.store(conn, found, as_of)
        rows = digest.rows_of(conn, found)
        restatements.record(conn, "alert", as_of, restatements.alert_numbers(rows))
        sent = digest.deliver(conn, settings, rules, as_of)
        result.alerts_emailed = sent.emailed
        result.alert_mails = sent.mails
        result.alerts_unconfirmed = sent.unconfirmed
        result.errors.extend(sent.errors)
        result.render_failures.extend(sent.render_failures)

        descriptions = {r.name: r.description for r in rules}
        failed = {what for what, _ in sent.render_failures}
        shown = [
            r for r in rows if f"alert {r['rule']} [{r['segment']}] on {r['day']}" not in failed
        ]
        retracted_rows = conn.execute(
            "select rule, segment, day, retraction_note from publish.kpi_alerts"
            " where retracted_as_of = %s order by day, rule, segment",
            (as_of,),
        ).fetchall()
        try:
            html_sections, text_sections = sections.render_sections(
                shown,
                descriptions,
                [f"{a.rule} [{a.segment}] on {a.day}" for a in held],
                [
                    {"rule": a, "segment": b, "day": c, "retraction_note": d}
                    for a, b, c, d in retracted_rows
                ],
                evaluation.not_evaluated,
                restated,
            )
        except Exception as exc:  # noqa: BLE001 - the report goes out without them
            result.render_failures.append(
                (f"report {as_of} sections alerts and restatements", f"{type(exc).__name__}: {exc}")
            )
            html_sections, text_sections = [], []
        built = report.build(conn, as_of, html_sections, text_sections)
        restatements.record(conn, "report", as_of, restatements.report_numbers(conn, as_of))
        flagged = provisional.banner(conn, as_of, {t.name: t.title for t in built.tables})
        if flagged is not None:
            built.banner = (flagged.html, flagged.text)
            result.provisional_sources = list(flagged.sources)
        result.render_failures.extend(built.failures)
        result.report_path = report.write(built)
        recipients = settings.recipients(["ops"])
        msg_id = outbox.message_id("report", as_of)
        message = report.email(built, settings.sender, recipients, msg_id)
        section_errors = "; ".join(f"{w}: {e}" for w, e in built.failures) or None
        with conn.transaction():
            claimed = conn.execute(
                "insert into publish.reports_sent (as_of, path, message_id, recipients,"
                " section_errors) values (%s, %s, %s, %s, %s)"
                " on conflict (as_of) do nothing returning as_of",
                (as_of, str(result.report_path), msg_id, ", ".join(recipients), section_errors),
            ).fetchone()
        if claimed is None:
            result.report_already_sent = True
        else:
            try:
                outbox.send_claimed(
                    conn,
                    message,
                    settings,
                    mark_sent=lambda c: c.execute(
                        "update publish.reports_sent set emailed_at = now() where as_of = %s",
                        (as_of,),
                    ),
                    release=lambda c: c.execute(
                        "delete from publish.reports_sent where as_of = %s", (as_of,)
                    ),
                )
                result.report_emailed = True
            except SendError as exc:
                result.errors.append(f"report {as_of}: {exc}")
        try:
            result.source_health_told = provisional.tell_data_engineers(conn, as_of)
        except (SendError, MailConfigError) as exc:
            result.errors.append(f"telling data engineers about source health: {exc}")
        posted = channels.post_all(conn, as_of, flagged.text if flagged else None)
        result.webhook_posts = posted.posts
        result.errors.extend(posted.errors)
        if result.render_failures:
            try:
                result.render_failures_told = notify.tell_render_failures(
                    conn, as_of, result.render_failures
                )
            except SendError as exc:
                result.errors.append(f"telling data engineers what was not rendered: {exc}")
    log.info(result.summary())
    if result.errors:
        raise PublishError(result.summary())
    return result
