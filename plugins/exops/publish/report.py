"""The daily ops report: HTML with charts and CSV tables, written under var/reports/<as-of>/
and emailed once per as-of date.

Only aggregates reach it: no user ids, no personal data (``dormant_recall_targets`` is not
read, risk alerts are counts by type), user counts below 5 are shown as "<5", and every
value is HTML-escaped. CSV cells that a spreadsheet would run as a formula are prefixed
with ``'`` (OWASP's advice against CSV injection); numbers stay numbers.

Each section (table, chart) is read and rendered on its own: one that fails is replaced by
a note, recorded in ``Report.failures``, and the report goes out with the others.
"""

from __future__ import annotations

import csv
import html
import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from exops.mail import attachment_name, header_text
from exops.publish import formatting as fmt
from exops.settings import var_dir

log = logging.getLogger(__name__)

# (header, key, is a user count)
Column = tuple[str, str, bool]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def csv_cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: a string starting with ``=``, ``+``, ``-``,
    ``@``, tab or CR gets a leading ``'``, unless it is a plain number such as ``-12.5``."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.match(value):
        return "'" + value
    return value


@dataclass
class Table:
    name: str  # CSV file stem
    title: str
    columns: list[Column]
    rows: list[dict]
    note: str = ""
    error: str | None = None  # the section could not be read or rendered

    def csv_bytes(self) -> bytes:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([csv_cell(h) for h, _, _ in self.columns])
        for row in self.rows:
            w.writerow([csv_cell(fmt.suppressed(row.get(k), uc)) for _, k, uc in self.columns])
        return buf.getvalue().encode("utf-8")

    def html(self) -> str:
        e = html.escape
        if self.error is not None:
            return (
                f"<h2>{e(self.title)}</h2><p class='note'>This section could not be rendered; "
                "data engineers were told.</p>"
            )
        head = "".join(f"<th>{e(h)}</th>" for h, _, _ in self.columns)
        body = "".join(
            "<tr>"
            + "".join(f"<td>{e(fmt.number(row.get(k), uc))}</td>" for _, k, uc in self.columns)
            + "</tr>"
            for row in self.rows
        )
        if not self.rows:
            body = f'<tr><td colspan="{len(self.columns)}">no rows</td></tr>'
        note = f"<p class='note'>{e(self.note)}</p>" if self.note else ""
        return (
            f"<h2>{e(self.title)}</h2>{note}"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )


@dataclass
class Report:
    as_of: date
    tables: list[Table]
    charts: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG
    headline: dict = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (section, error)
    # sections rendered by their own modules (alerts and what moved, restatements): HTML
    # shown after the headline, text added to the mail's plain part
    extra_html: list[str] = field(default_factory=list)
    extra_text: list[str] = field(default_factory=list)
    # a banner above everything, e.g. provisional marts (exops.publish.provisional): (html, text)
    banner: tuple[str, str] | None = None

    def fail(self, what: str, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {exc}"
        log.error("report %s: %s could not be rendered: %s", self.as_of, what, error)
        self.failures.append((f"report {self.as_of} section {what}", error))

    def render_sections(self) -> None:
        """Render each table's HTML and CSV once; one that fails becomes a note."""
        for i, t in enumerate(self.tables):
            if t.error is not None:
                continue
            try:
                t.html()
                t.csv_bytes()
            except Exception as exc:  # noqa: BLE001 - one bad section must not stop the report
                self.fail(t.name, exc)
                self.tables[i] = Table(t.name, t.title, t.columns, [], error=str(exc))

    def csv_tables(self) -> list[Table]:
        return [t for t in self.tables if t.error is None]

    def html(self, image_src: Callable[[str], str]) -> str:
        e = html.escape
        charts = "".join(
            f'<img src="{e(image_src(name))}" alt="{e(name)}" width="640">' for name in self.charts
        )
        return (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>exops daily ops report {e(str(self.as_of))}</title>"
            "<style>body{font-family:sans-serif}table{border-collapse:collapse;margin-bottom:1em}"
            "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
            "th{background:#eee}.note{color:#555}</style></head><body>"
            f"<h1>Daily ops report, {e(str(self.as_of))}</h1>"
            + (self.banner[0] if self.banner else "")
            + "<p class='note'>All days are UTC. Counts of users below 5 are shown as &lt;5. "
            "Only validated data is reported.</p>"
            + self.tables[0].html()
            + "".join(self.extra_html)
            + charts
            + "".join(t.html() for t in self.tables[1:])
            + "</body></html>"
        )


def _rows(conn: psycopg.Connection, sql: str, params: dict) -> list[dict]:
    return conn.cursor(row_factory=dict_row).execute(sql, params).fetchall()


HEADLINE = [
    ("Trades", "trade_count", False),
    ("Volume (USD)", "volume_usd", False),
    ("Fees (USD)", "fees_usd", False),
    ("Traders", "traders", True),
    ("Active users", "active_users", True),
    ("WAU", "wau", True),
    ("MAU", "mau", True),
    ("Stickiness", "stickiness", False),
    ("Registrations", "registrations", True),
    ("New traders", "new_traders", True),
    ("Deposits (USD)", "deposits_usd", False),
    ("Withdrawals (USD)", "withdrawals_usd", False),
]


def _headline(conn: psycopg.Connection, as_of: date) -> tuple[Table, dict]:
    days = {
        r["activity_date"]: r
        for r in _rows(
            conn,
            "select * from marts.exchange_daily_kpis where activity_date = any(%(d)s)",
            {"d": [as_of, as_of - timedelta(days=1), as_of - timedelta(days=7)]},
        )
    }
    today = days.get(as_of, {})
    prev = days.get(as_of - timedelta(days=1), {})
    week = days.get(as_of - timedelta(days=7), {})
    rows = []
    for label, key, uc in HEADLINE:
        rows.append(
            {
                "kpi": label,
                "value": fmt.suppressed(today.get(key), uc),
                "previous_day": fmt.suppressed(prev.get(key), uc),
                "dod": fmt.signed_percent(fmt.percent_change(today.get(key), prev.get(key))),
                "week_before": fmt.suppressed(week.get(key), uc),
                "wow": fmt.signed_percent(fmt.percent_change(today.get(key), week.get(key))),
            }
        )
    table = Table(
        "headline_kpis",
        "Headline KPIs",
        [
            ("KPI", "kpi", False),
            (str(as_of), "value", False),
            ("Previous day", "previous_day", False),
            ("Day over day", "dod", False),
            ("Same day last week", "week_before", False),
            ("Week over week", "wow", False),
        ],
        rows,
    )
    return table, today


def build(
    conn: psycopg.Connection,
    as_of: date,
    extra_html: list[str] | None = None,
    extra_text: list[str] | None = None,
) -> Report:
    """Read the marts for ``as_of`` into the report's tables and charts; ``extra_html`` and
    ``extra_text``: sections rendered elsewhere (see :mod:`exops.publish.sections`)."""
    p = {"as_of": as_of, "d30": as_of - timedelta(days=29), "d7": as_of - timedelta(days=6)}
    report = Report(as_of, [], extra_html=list(extra_html or []), extra_text=list(extra_text or []))

    def section(name, title, columns, sql, note=""):
        try:
            return Table(name, title, columns, _rows(conn, sql, p), note=note)
        except Exception as exc:  # noqa: BLE001 - one bad section must not stop the report
            report.fail(name, exc)
            return Table(name, title, columns, [], error=str(exc))

    try:
        headline, today = _headline(conn, as_of)
    except Exception as exc:  # noqa: BLE001 - as for every section
        report.fail("headline_kpis", exc)
        headline, today = Table("headline_kpis", "Headline KPIs", [], [], error=str(exc)), {}
    tables = report.tables
    tables.append(headline)
    tables.append(
        section(
            "products_by_stage",
            "Products by lifecycle stage",
            [
                ("Stage", "lifecycle_stage", False),
                ("Products", "products", False),
                ("Trades", "trade_count", False),
                ("Volume (USD)", "volume_usd", False),
                ("Fees (USD)", "fees_usd", False),
                ("New traders", "new_traders", True),
            ],
            """select lifecycle_stage, count(*) as products, sum(trade_count) as trade_count,
                          sum(volume_usd) as volume_usd, sum(fees_usd) as fees_usd,
                          sum(new_traders) as new_traders
                     from marts.product_daily_kpis where activity_date = %(as_of)s
                    group by 1 order by 1""",
        )
    )
    tables.append(
        section(
            "product_stage_changes",
            "Products that changed stage in the last 7 days",
            [
                ("Product", "product_id", False),
                ("Line", "product_line", False),
                ("Stage", "lifecycle_stage", False),
                ("Since", "stage_start_date", False),
                ("Avg daily volume (USD)", "avg_daily_volume_usd", False),
            ],
            """select product_id, product_line, lifecycle_stage, stage_start_date,
                          avg_daily_volume_usd
                     from marts.product_stage_kpis
                    where is_current and stage_start_date >= %(d7)s
                    order by stage_start_date desc, product_id""",
        )
    )
    tables.append(
        section(
            "tier_mix",
            "User tiers",
            [
                ("Tier", "tier", False),
                ("Users", "users", True),
                ("Active users", "active_users", True),
                ("Volume (USD)", "volume_usd", False),
                ("Fees (USD)", "fees_usd", False),
                ("Net deposits (USD)", "net_deposits_usd", False),
            ],
            """select tier, users, active_users, volume_usd, fees_usd, net_deposits_usd
                     from marts.user_tier_daily where activity_date = %(as_of)s
                    order by tier""",
        )
    )
    tables.append(
        section(
            "tier_movements",
            "Tier movements (last 7 days)",
            [("From", "from_tier", False), ("To", "to_tier", False), ("Users", "users", True)],
            """select from_tier, to_tier, sum(users) as users
                     from marts.user_tier_transitions
                    where activity_date between %(d7)s and %(as_of)s
                    group by 1, 2 order by 3 desc, 1, 2""",
        )
    )
    tables.append(
        section(
            "funnel",
            "Acquisition funnel (registrations of the last 7 complete days)",
            [
                ("Channel", "acquisition_channel", False),
                ("Registered", "registered_users", True),
                ("KYC approved", "kyc_approved_users", True),
                ("Deposited", "deposited_users", True),
                ("Traded", "traded_users", True),
                ("Trade rate", "trade_rate", False),
            ],
            """with last_days as (
                       select * from marts.acquisition_funnel
                        where is_complete and registration_date > (
                              select max(registration_date) from marts.acquisition_funnel
                               where is_complete) - 7)
                   select acquisition_channel, sum(registered_users) as registered_users,
                          sum(kyc_approved_users) as kyc_approved_users,
                          sum(deposited_users) as deposited_users,
                          sum(traded_users) as traded_users,
                          sum(traded_users)::numeric / nullif(sum(registered_users), 0)
                              as trade_rate
                     from last_days group by 1 order by 1""",
        )
    )
    tables.append(
        section(
            "retention",
            "Retention, all channels (latest 6 cohorts)",
            [
                ("Cohort week", "cohort_week", False),
                ("Cohort users", "cohort_users", True),
                ("Week 1", "w1", False),
                ("Week 2", "w2", False),
                ("Week 4", "w4", False),
            ],
            """select cohort_week, max(cohort_users) as cohort_users,
                          max(retention_rate) filter (where week_number = 1) as w1,
                          max(retention_rate) filter (where week_number = 2) as w2,
                          max(retention_rate) filter (where week_number = 4) as w4
                     from marts.retention_cohorts where acquisition_channel = 'all'
                    group by 1 order by 1 desc limit 6""",
        )
    )
    tables.append(
        section(
            "campaigns",
            "Campaign scoreboard (running or ended in the last 30 days)",
            [
                ("Campaign", "campaign_id", False),
                ("Type", "campaign_type", False),
                ("Line", "product_line", False),
                ("Start", "start_date", False),
                ("End", "end_date", False),
                ("Participants", "participants", True),
                ("Incremental volume (USD)", "incremental_volume_usd", False),
                ("Incremental fees (USD)", "incremental_fees_usd", False),
                ("Cost (USD)", "cost_usd", False),
                ("ROI", "roi", False),
            ],
            """select campaign_id, campaign_type, coalesce(product_line, 'all') as
                          product_line, start_date, end_date, participants,
                          incremental_volume_usd, incremental_fees_usd, cost_usd, roi
                     from marts.campaign_performance where end_date >= %(d30)s
                    order by start_date desc, campaign_id""",
        )
    )
    tables.append(
        section(
            "feedback",
            f"Support tickets created on {as_of}",
            [
                ("Category", "category", False),
                ("Tickets", "tickets", False),
                ("Resolved", "resolved_tickets", False),
                ("Resolved within 24h", "resolved_within_24h", False),
                ("Avg CSAT", "avg_csat", False),
            ],
            """select category, sum(tickets) as tickets,
                          sum(resolved_tickets) as resolved_tickets,
                          sum(resolved_within_24h) as resolved_within_24h,
                          sum(avg_csat * csat_responses) / nullif(sum(csat_responses), 0)
                              as avg_csat
                     from marts.feedback_daily where created_date = %(as_of)s
                    group by 1 order by 1""",
        )
    )
    tables.append(
        section(
            "nps",
            "NPS by week (latest 4 weeks)",
            [
                ("Week", "week_start", False),
                ("Product line", "product_line", False),
                ("Responses", "responses", False),
                ("NPS", "nps", False),
            ],
            """select week_start, product_line, responses, nps from marts.nps_weekly
                    where week_start > %(as_of)s - 28 order by week_start desc, product_line""",
        )
    )
    tables.append(
        section(
            "risk_alerts",
            "Risk alerts by type (counts only)",
            [
                ("Type", "alert_type", False),
                ("Severity", "severity", False),
                (str(as_of), "today", False),
                ("Last 7 days", "last_7_days", False),
            ],
            """select alert_type, severity,
                          count(*) filter (where alert_date = %(as_of)s) as today,
                          count(*) as last_7_days
                     from marts.risk_alerts where alert_date between %(d7)s and %(as_of)s
                    group by 1, 2 order by 1, 2""",
            note="Subjects are in the risk_alerts mart for authorised reviewers.",
        )
    )
    report.headline = today
    report.charts = _charts(conn, p, report)
    report.render_sections()
    return report


def _charts(conn: psycopg.Connection, p: dict, report: Report) -> dict[str, bytes]:
    """The report's PNG charts, each drawn on its own (a failed one is left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def volume(ax) -> None:
        daily = _daily(conn, p)
        ax.plot([r["activity_date"] for r in daily], [float(r["volume_usd"] or 0) for r in daily])
        ax.set_title("Exchange volume (USD), last 30 days")

    def users(ax) -> None:
        daily = _daily(conn, p)
        days = [r["activity_date"] for r in daily]
        ax.plot(days, [r["traders"] or 0 for r in daily], label="traders")
        ax.plot(days, [r["active_users"] or 0 for r in daily], label="active users")
        ax.set_title("Traders and active users, last 30 days")
        ax.legend()

    def tiers(ax) -> None:
        rows = _rows(
            conn,
            """select activity_date, tier, users from marts.user_tier_daily
                where activity_date between %(d30)s and %(as_of)s order by 1, 2""",
            p,
        )
        tier_days = sorted({r["activity_date"] for r in rows})
        bottom = [0.0] * len(tier_days)
        for tier in sorted({r["tier"] for r in rows}):
            by_day = {r["activity_date"]: float(r["users"] or 0) for r in rows if r["tier"] == tier}
            values = [by_day.get(d, 0.0) for d in tier_days]
            ax.bar(tier_days, values, bottom=bottom, label=tier)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_title("Users by tier, last 30 days")
        ax.legend(fontsize="small")

    charts: dict[str, bytes] = {}
    for name, draw in (("volume.png", volume), ("users.png", users), ("tiers.png", tiers)):
        fig, ax = plt.subplots(figsize=(8, 3))
        try:
            draw(ax)
            fig.autofmt_xdate()
            fig.tight_layout()
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=80)
            charts[name] = buf.getvalue()
        except Exception as exc:  # noqa: BLE001 - one bad chart must not stop the report
            report.fail(name, exc)
        finally:
            plt.close(fig)
    return charts


def _daily(conn: psycopg.Connection, p: dict) -> list[dict]:
    return _rows(
        conn,
        """select activity_date, volume_usd, traders, active_users
             from marts.exchange_daily_kpis where activity_date between %(d30)s and %(as_of)s
            order by 1""",
        p,
    )


def report_dir(as_of: date) -> Path:
    path = var_dir() / "reports" / as_of.isoformat()
    path.mkdir(parents=True, exist_ok=True)
    return path


def write(report: Report) -> Path:
    """Write report.html with its PNGs and CSVs beside it; returns the HTML path."""
    out = report_dir(report.as_of)
    for name, data in report.charts.items():
        (out / name).write_bytes(data)
    for t in report.csv_tables():
        (out / attachment_name(f"{t.name}.csv")).write_bytes(t.csv_bytes())
    path = out / "report.html"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(report.html(lambda name: name), encoding="utf-8")
    tmp.replace(path)
    return path


def email(report: Report, sender: str, recipients: list[str], msg_id: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = header_text(f"[exops] Daily ops report {report.as_of}")
    msg["Message-ID"] = header_text(msg_id)
    lines = [f"Daily ops report for {report.as_of} (UTC).", ""]
    if report.banner:
        lines += [report.banner[1].rstrip(), ""]
    for row in report.tables[0].rows:
        lines.append(
            f"{row['kpi']}: {fmt.number(row['value'])} (DoD {row['dod']}, WoW {row['wow']})"
        )
    for text in report.extra_text:
        lines += ["", text.rstrip()]
    lines += ["", "The full report is the HTML part of this mail; tables are attached as CSV."]
    if report.failures:
        lines += ["", "Sections that could not be rendered (data engineers were told):"]
        lines += [f"  {header_text(what)}" for what, _ in report.failures]
    msg.set_content("\n".join(lines))
    cids = {
        name: header_text(f"{attachment_name(name).replace('.', '-')}-{report.as_of}@exops")
        for name in report.charts
    }
    msg.add_alternative(report.html(lambda name: f"cid:{cids[name]}"), subtype="html")
    html_part = msg.get_payload()[1]
    for name, data in report.charts.items():
        html_part.add_related(
            data,
            "image",
            "png",
            cid=f"<{cids[name]}>",
            filename=attachment_name(name),
            disposition="inline",
        )
    for t in report.csv_tables():
        msg.add_attachment(t.csv_bytes(), "text", "csv", filename=attachment_name(f"{t.name}.csv"))
    return msg
