"""The daily ops report: one designed, email-safe HTML page with CSV tables and PNG charts,
written under var/reports/<as-of>/ and emailed once per as-of date.

The page is rendered once, from ``templates/report.html.j2``, and that one text is both the
file and the email's HTML part: everything it shows is drawn in HTML (headline KPI cards with
a trend of the last days, tables, a 30-day volume chart), so nothing in it depends on where
it is opened. The PNG charts travel beside it (attached to the email, written beside the
file) for slides and forwarding.

Only aggregates reach it: no user ids, no personal data (``dormant_recall_targets`` is not
read, risk alerts are counts by type), user counts below 5 are shown as "<5" (and no change
or trend bar gives them away), rates and scores from samples too small to mean anything are
flagged instead of shown as precise, and every value is HTML-escaped by the template. CSV
cells that a spreadsheet would run as a formula are prefixed with ``'`` (OWASP's advice
against CSV injection); numbers stay numbers.

Each section (table, chart) is read and rendered on its own: one that fails is replaced by
a note, recorded in ``Report.failures``, and the report goes out with the others.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import NamedTuple

import psycopg
from markupsafe import Markup
from psycopg.rows import dict_row

from exops.mail import attachment_name, header_text
from exops.publish import formatting as fmt
from exops.settings import var_dir
from exops.templating import render

log = logging.getLogger(__name__)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")

# below these sample sizes a rate or score is flagged "not significant", not shown as precise:
# an NPS moves by 10 points with a handful of answers from 30; a rate of 30 people by ~9
# points (one standard error of a proportion near one half)
MIN_NPS_RESPONSES = 100
MIN_RATE_SAMPLE = 30
TREND_DAYS = 14  # the sparkline beside each headline KPI
CHART_DAYS = 30  # the volume chart of the page


def csv_cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: a string starting with ``=``, ``+``, ``-``,
    ``@``, tab or CR gets a leading ``'``, unless it is a plain number such as ``-12.5``."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.match(value):
        return "'" + value
    return value


class Column(NamedTuple):
    header: str
    key: str
    user_count: bool = False
    # how the page shows it: text, number, usd, rate (a ratio as %), score (NPS), or kpi (by
    # the row's own "unit"); the CSV keeps the value as it is
    kind: str = "number"
    # (column with the sample size, minimum): below it the value is flagged, not shown
    sample: tuple[str, int] | None = None
    tone: str | None = None  # the row key holding the tone of a change (good, bad, ...)


@dataclass(frozen=True)
class Cell:
    """One table cell as the page shows it."""

    text: str
    numeric: bool = False
    tone: str | None = None
    flag: str | None = None  # "n<30": too small a sample, the value is not shown
    nowrap: bool = False


@dataclass(frozen=True)
class TableView:
    title: str
    note: str
    headers: list[Cell]
    rows: list[list[Cell]]
    error: bool = False


def _cell(column: Column, row: dict) -> Cell:
    value = row.get(column.key)
    kind = row.get("unit", "number") if column.kind == "kpi" else column.kind
    if column.sample is not None:
        size_key, minimum = column.sample
        size = row.get(size_key)
        if value is not None and (size is None or float(size) < minimum):
            return Cell("not significant", True, flag=f"n<{minimum}")
    if kind in ("text", "date"):
        text = "–" if value is None else str(value)
    elif kind in ("rate", "ratio"):
        text = fmt.percent(value)
    elif kind == "score":
        text = "–" if value is None else f"{float(value):+.0f}"
    else:
        text = fmt.number(value, column.user_count)
    tone = row.get(column.tone) if column.tone else None
    return Cell(text, kind not in ("text", "date"), tone, nowrap=kind != "text")


@dataclass
class Table:
    name: str  # CSV file stem
    title: str
    columns: list[Column]
    rows: list[dict]
    note: str = ""
    error: str | None = None  # the section could not be read or rendered

    def __post_init__(self) -> None:
        self.columns = [c if isinstance(c, Column) else Column(*c) for c in self.columns]

    def csv_bytes(self) -> bytes:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([csv_cell(c.header) for c in self.columns])
        for row in self.rows:
            w.writerow(
                [csv_cell(fmt.suppressed(row.get(c.key), c.user_count)) for c in self.columns]
            )
        return buf.getvalue().encode("utf-8")

    def view(self) -> TableView:
        """What the page shows of this table (formatting each value: a bad one raises)."""
        if self.error is not None:
            return TableView(self.title, self.note, [], [], error=True)
        headers = [Cell(c.header, c.kind not in ("text", "date")) for c in self.columns]
        rows = [[_cell(c, row) for c in self.columns] for row in self.rows]
        return TableView(self.title, self.note, headers, rows)


@dataclass(frozen=True)
class Kpi:
    """A headline KPI: a column of ``exchange_daily_kpis`` (or a count derived for each day)
    and what its movement means."""

    label: str
    key: str
    unit: str = "count"  # count, usd or ratio
    user_count: bool = False
    # which direction is good news: colours the change (green good, red bad, blue neither)
    better: fmt.Better = "up"


HEADLINE: tuple[Kpi, ...] = (
    Kpi("Volume (USD)", "volume_usd", "usd"),
    Kpi("Fees (USD)", "fees_usd", "usd"),
    Kpi("Trades", "trade_count"),
    Kpi("Traders", "traders", user_count=True),
    Kpi("Active users", "active_users", user_count=True),
    Kpi("Stickiness", "stickiness", "ratio"),
    Kpi("WAU", "wau", user_count=True),
    Kpi("MAU", "mau", user_count=True),
    Kpi("Registrations", "registrations", user_count=True),
    Kpi("New traders", "new_traders", user_count=True),
    Kpi("Deposits (USD)", "deposits_usd", "usd"),
    # money leaving is not bad news in itself (it follows deposits and prices): no colour
    Kpi("Withdrawals (USD)", "withdrawals_usd", "usd", better=None),
    # alerts of marts.risk_alerts raised that day, all types: more is worse
    Kpi("Risk alerts", "risk_alerts", better="down"),
)


@dataclass(frozen=True)
class Change:
    label: str  # "DoD", "WoW", "vs last week"
    text: str  # "60.8%", "+4 pts"
    arrow: str  # "▲", "▼" or ""
    tone: str  # good, bad, neutral, steady


@dataclass(frozen=True)
class Bar:
    height: int  # pixels (0: no value that day)
    tone: str  # "history", or the latest bar's tone
    title: str  # "09-28: 1.02M"


@dataclass(frozen=True)
class Trend:
    """A small bar chart of a series, zero-based (a bar is as tall as its value), so that a
    flat series looks flat and a halving looks like one."""

    bars: list[Bar]
    caption: str
    text: str  # the same series as block characters, for the plain-text part
    height: int


_BLOCKS = "▁▂▃▄▅▆▇█"


def trend(
    points: list[tuple[date, object]],
    unit: str = "count",
    user_count: bool = False,
    last_tone: str = "steady",
    height: int = 28,
    what: str = "",
) -> Trend:
    """``points`` (day, value), oldest first; user counts of 1-4 are left out (no bar)."""

    def usable(v: object) -> float | None:
        if v is None or fmt.is_suppressed(v, user_count):
            return None
        return fmt.finite(v)

    values = [usable(v) for _, v in points]
    known = [v for v in values if v is not None]
    top = max([*known, 0.0])
    bars, blocks = [], []
    for i, ((day, raw), v) in enumerate(zip(points, values, strict=True)):
        tone = last_tone if i == len(points) - 1 else "history"
        shown = fmt.compact(raw, unit, user_count) if raw is not None else "no data"
        title = f"{day:%m-%d}: {shown}"
        if v is None or top <= 0:
            bars.append(Bar(0 if v is None else 2, tone, title))
            blocks.append(" " if v is None else _BLOCKS[0])
            continue
        share = max(v, 0.0) / top
        bars.append(Bar(max(2, round(share * height)), tone, title))
        blocks.append(_BLOCKS[min(len(_BLOCKS) - 1, int(share * (len(_BLOCKS) - 1) + 0.5))])
    if known:
        low, high = min(known), max(known)
        span = f"{fmt.compact(low, unit)} to {fmt.compact(high, unit)}"
    else:
        span = "no data"
    caption = f"{what or f'{len(points)} days'}, {span}"
    return Trend(bars, caption, "".join(blocks), height)


@dataclass(frozen=True)
class Card:
    label: str
    value: str  # compact: $412.3M
    exact: str  # 412,345,678
    changes: list[Change]
    trend: Trend | None = None
    flag: str | None = None  # why the value is not shown (too small a sample)
    note: str = ""


def _change(label: str, change: float | None, better: fmt.Better) -> Change:
    text = "–" if change is None else f"{abs(change):.1f}%"
    return Change(label, text, fmt.arrow(change), fmt.tone(change, better))


@dataclass
class Report:
    as_of: date
    tables: list[Table]
    charts: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG
    headline: dict = field(default_factory=dict)
    cards: list[Card] = field(default_factory=list)
    volume_chart: Trend | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)  # (section, error)
    # sections rendered by their own modules (alerts and what moved, restatements): HTML
    # shown after the headline, text added to the mail's plain part
    extra_html: list[str] = field(default_factory=list)
    extra_text: list[str] = field(default_factory=list)
    # a banner above everything, e.g. provisional marts (exops.publish.provisional): (html, text)
    banner: tuple[str, str] | None = None
    views: list[TableView] = field(default_factory=list)
    page: str | None = field(default=None, repr=False)  # the rendered page, see html()

    def fail(self, what: str, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {exc}"
        log.error("report %s: %s could not be rendered: %s", self.as_of, what, error)
        self.failures.append((f"report {self.as_of} section {what}", error))

    def render_sections(self) -> None:
        """Format each table for the page and its CSV once; one that fails becomes a note."""
        self.views = []
        for i, t in enumerate(self.tables):
            try:
                view = t.view()
                if t.error is None:
                    t.csv_bytes()
            except Exception as exc:  # noqa: BLE001 - one bad section must not stop the report
                self.fail(t.name, exc)
                self.tables[i] = Table(t.name, t.title, t.columns, [], error=str(exc))
                view = self.tables[i].view()
            self.views.append(view)

    def csv_tables(self) -> list[Table]:
        return [t for t in self.tables if t.error is None]

    def context(self) -> dict:
        """What report.html.j2 and report.txt.j2 are given (formatted once, shown twice)."""
        if len(self.views) != len(self.tables):
            self.render_sections()
        headline_rows = self.tables[0].rows if self.tables and not self.tables[0].error else []
        in_table = {r["kpi"] for r in headline_rows}
        return {
            "as_of": self.as_of,
            "day_title": f"{self.as_of:%A} {self.as_of.day} {self.as_of:%B %Y}",
            "cards": self.cards,
            "more_cards": [c for c in self.cards if c.label not in in_table],
            "headline": headline_rows,
            "volume_chart": self.volume_chart,
            "sections": self.views,
            "failed_sections": [t.title for t in self.tables if t.error is not None],
            "failures": [header_text(what) for what, _ in self.failures],
            "charts": list(self.charts),
            "csv_files": [attachment_name(f"{t.name}.csv") for t in self.csv_tables()],
            "small_count": fmt.SMALL_COUNT,
            "min_rate_sample": MIN_RATE_SAMPLE,
            "min_nps_responses": MIN_NPS_RESPONSES,
            "steady_percent": fmt.STEADY_PERCENT,
            "trend_days": TREND_DAYS,
            # rendered (and escaped) by its own template: exops.publish.provisional
            "banner_html": Markup(self.banner[0]) if self.banner else None,
            "banner_text": self.banner[1].rstrip() if self.banner else None,
            # alerts and what moved, not evaluated, restatements: rendered by their modules
            "extra_html": [Markup(h) for h in self.extra_html],
            "extra_text": [t.rstrip() for t in self.extra_text],
        }

    def html(self) -> str:
        """The page, rendered once on first use: :func:`write` and :func:`email` both take this
        one text, so the report file and the email's HTML part cannot differ."""
        if self.page is None:
            self.page = render("report.html.j2", **self.context())
        return self.page

    def text(self) -> str:
        """The email's plain-text part."""
        return render("report.txt.j2", **self.context())


def _rows(conn: psycopg.Connection, sql: str, params: dict) -> list[dict]:
    return conn.cursor(row_factory=dict_row).execute(sql, params).fetchall()


def _headline(conn: psycopg.Connection, as_of: date) -> tuple[Table, dict, list[Card]]:
    first = as_of - timedelta(days=TREND_DAYS - 1)
    p = {"first": min(first, as_of - timedelta(days=7)), "as_of": as_of}
    days: dict[date, dict] = {
        r["activity_date"]: dict(r)
        for r in _rows(
            conn,
            "select * from marts.exchange_daily_kpis"
            " where activity_date between %(first)s and %(as_of)s",
            p,
        )
    }
    alerts = {
        r["alert_date"]: r["alerts"]
        for r in _rows(
            conn,
            "select alert_date, count(*) as alerts from marts.risk_alerts"
            " where alert_date between %(first)s and %(as_of)s group by 1",
            p,
        )
    }
    for d in days:
        days[d]["risk_alerts"] = alerts.get(d, 0)
    today = days.get(as_of, {})
    prev = days.get(as_of - timedelta(days=1), {})
    week = days.get(as_of - timedelta(days=7), {})
    trend_days = [first + timedelta(days=i) for i in range(TREND_DAYS)]
    rows, cards = [], []
    for kpi in HEADLINE:
        value = today.get(kpi.key)

        def change(base: dict, kpi: Kpi = kpi, value: object = value) -> float | None:
            before = base.get(kpi.key)
            # a change from or to a suppressed count would give the count away
            if fmt.is_suppressed(value, kpi.user_count) or fmt.is_suppressed(
                before, kpi.user_count
            ):
                return None
            return fmt.percent_change(value, before)

        dod, wow = change(prev), change(week)
        shown = fmt.percent(value) if kpi.unit == "ratio" else fmt.number(value, kpi.user_count)
        rows.append(
            {
                "kpi": kpi.label,
                "value": fmt.suppressed(value, kpi.user_count),
                "previous_day": fmt.suppressed(prev.get(kpi.key), kpi.user_count),
                "dod": fmt.signed_percent(dod),
                "week_before": fmt.suppressed(week.get(kpi.key), kpi.user_count),
                "wow": fmt.signed_percent(wow),
                # for the page and the plain text, not the CSV
                "unit": kpi.unit,
                "shown": shown,
                "dod_tone": fmt.tone(dod, kpi.better),
                "wow_tone": fmt.tone(wow, kpi.better),
            }
        )
        cards.append(
            Card(
                kpi.label,
                fmt.compact(value, kpi.unit, kpi.user_count),
                shown,
                [_change("DoD", dod, kpi.better), _change("WoW", wow, kpi.better)],
                trend(
                    [(d, days.get(d, {}).get(kpi.key)) for d in trend_days],
                    kpi.unit,
                    kpi.user_count,
                    last_tone=fmt.tone(dod, kpi.better),
                ),
            )
        )
        rows[-1]["trend"] = cards[-1].trend.text
    table = Table(
        "headline_kpis",
        "Headline KPIs",
        [
            Column("KPI", "kpi", kind="text"),
            Column(str(as_of), "value", kind="kpi"),
            Column("Previous day", "previous_day", kind="kpi"),
            Column("Day over day", "dod", kind="text", tone="dod_tone"),
            Column("Same day last week", "week_before", kind="kpi"),
            Column("Week over week", "wow", kind="text", tone="wow_tone"),
        ],
        rows,
    )
    return table, today, cards


def _nps_card(nps: Table, as_of: date) -> Card | None:
    """The NPS of the latest week (all product lines) from the NPS table's rows, flagged when
    too few answered; None when that table could not be read."""
    if nps.error is not None:
        return None
    weeks = sorted(
        (r for r in nps.rows if r["product_line"] == "all" and r["week_start"] <= as_of),
        key=lambda r: r["week_start"],
    )

    def significant(w: dict) -> bool:
        return w["nps"] is not None and (w["responses"] or 0) >= MIN_NPS_RESPONSES

    bars = [(w["week_start"], w["nps"] if significant(w) else None) for w in weeks]
    if not any(v is not None for _, v in bars):
        bars = []  # no week to draw: the flag says why
    if not weeks:
        return Card("NPS", "–", "no survey answers", [], None, note="no NPS week yet")
    latest = weeks[-1]
    partial = latest["week_start"] + timedelta(days=6) > as_of
    note = f"week of {latest['week_start']:%d %b}" + (" (so far)" if partial else "")
    responses = latest["responses"] or 0
    changes = []
    if len(weeks) > 1 and significant(latest) and significant(weeks[-2]):
        points = float(latest["nps"]) - float(weeks[-2]["nps"])
        tone = fmt.tone(points, "up", steady=2.0)  # NPS points, not percent
        changes.append(Change("vs week before", f"{abs(points):.0f} pts", fmt.arrow(points), tone))
    flag = None
    if not significant(latest):
        flag = "not significant"
        note += f", {responses} answers (fewer than {MIN_NPS_RESPONSES})"
    value = "–" if flag else f"{float(latest['nps']):+.0f}"
    return Card(
        "NPS",
        value,
        value if not flag else flag,
        changes,
        trend(bars, "score", what=f"{len(bars)} weeks") if bars else None,
        flag=flag,
        note=note,
    )


def build(
    conn: psycopg.Connection,
    as_of: date,
    extra_html: list[str] | None = None,
    extra_text: list[str] | None = None,
) -> Report:
    """Read the marts for ``as_of`` into the report's tables and charts; ``extra_html`` and
    ``extra_text``: sections rendered elsewhere (see :mod:`exops.publish.sections`)."""
    p = {
        "as_of": as_of,
        "d30": as_of - timedelta(days=CHART_DAYS - 1),
        "d7": as_of - timedelta(days=6),
    }
    report = Report(as_of, [], extra_html=list(extra_html or []), extra_text=list(extra_text or []))

    def section(name, title, columns, sql, note=""):
        try:
            return Table(name, title, columns, _rows(conn, sql, p), note=note)
        except Exception as exc:  # noqa: BLE001 - one bad section must not stop the report
            report.fail(name, exc)
            return Table(name, title, columns, [], error=str(exc))

    try:
        headline, today, report.cards = _headline(conn, as_of)
    except Exception as exc:  # noqa: BLE001 - as for every section
        report.fail("headline_kpis", exc)
        headline, today = Table("headline_kpis", "Headline KPIs", [], [], error=str(exc)), {}
    text = "text"
    cohort = ("cohort_users", MIN_RATE_SAMPLE)
    tables = report.tables
    tables.append(headline)
    tables.append(
        section(
            "products_by_stage",
            "Products by lifecycle stage",
            [
                Column("Stage", "lifecycle_stage", kind=text),
                Column("Products", "products"),
                Column("Trades", "trade_count"),
                Column("Volume (USD)", "volume_usd"),
                Column("Fees (USD)", "fees_usd"),
                Column("New traders", "new_traders", True),
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
                Column("Product", "product_id", kind=text),
                Column("Line", "product_line", kind=text),
                Column("Stage", "lifecycle_stage", kind=text),
                Column("Since", "stage_start_date", kind="date"),
                Column("Avg daily volume (USD)", "avg_daily_volume_usd"),
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
                Column("Tier", "tier", kind=text),
                Column("Users", "users", True),
                Column("Active users", "active_users", True),
                Column("Volume (USD)", "volume_usd"),
                Column("Fees (USD)", "fees_usd"),
                Column("Net deposits (USD)", "net_deposits_usd"),
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
            [
                Column("From", "from_tier", kind=text),
                Column("To", "to_tier", kind=text),
                Column("Users", "users", True),
            ],
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
                Column("Channel", "acquisition_channel", kind=text),
                Column("Registered", "registered_users", True),
                Column("KYC approved", "kyc_approved_users", True),
                Column("Deposited", "deposited_users", True),
                Column("Traded", "traded_users", True),
                Column(
                    "Trade rate",
                    "trade_rate",
                    kind="rate",
                    sample=("registered_users", MIN_RATE_SAMPLE),
                ),
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
                Column("Cohort week", "cohort_week", kind="date"),
                Column("Cohort users", "cohort_users", True),
                Column("Week 1", "w1", kind="rate", sample=cohort),
                Column("Week 2", "w2", kind="rate", sample=cohort),
                Column("Week 4", "w4", kind="rate", sample=cohort),
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
                Column("Campaign", "campaign_id", kind=text),
                Column("Type", "campaign_type", kind=text),
                Column("Line", "product_line", kind=text),
                Column("Start", "start_date", kind="date"),
                Column("End", "end_date", kind="date"),
                Column("Participants", "participants", True),
                Column("Incremental volume (USD)", "incremental_volume_usd"),
                Column("Incremental fees (USD)", "incremental_fees_usd"),
                Column("Cost (USD)", "cost_usd"),
                Column("ROI", "roi", kind="rate", sample=("participants", MIN_RATE_SAMPLE)),
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
                Column("Category", "category", kind=text),
                Column("Tickets", "tickets"),
                Column("Resolved", "resolved_tickets"),
                Column("Resolved within 24h", "resolved_within_24h"),
                Column("CSAT ratings", "csat_responses"),
                Column("Avg CSAT", "avg_csat", sample=("csat_responses", MIN_RATE_SAMPLE)),
            ],
            """select category, sum(tickets) as tickets,
                          sum(resolved_tickets) as resolved_tickets,
                          sum(resolved_within_24h) as resolved_within_24h,
                          sum(csat_responses) as csat_responses,
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
                Column("Week", "week_start", kind="date"),
                Column("Product line", "product_line", kind=text),
                Column("Responses", "responses"),
                Column("NPS", "nps", kind="score", sample=("responses", MIN_NPS_RESPONSES)),
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
                Column("Type", "alert_type", kind=text),
                Column("Severity", "severity", kind=text),
                Column(str(as_of), "today"),
                Column("Last 7 days", "last_7_days"),
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
    try:
        nps_card = _nps_card(next(t for t in tables if t.name == "nps"), as_of)
        report.cards += [nps_card] if nps_card else []
    except Exception as exc:  # noqa: BLE001 - as for every section
        report.fail("nps_card", exc)
    try:
        daily = _daily(conn, p)
        report.volume_chart = trend(
            [(r["activity_date"], r["volume_usd"]) for r in daily],
            "usd",
            last_tone=report.cards[0].changes[0].tone if report.cards else "steady",
            height=72,
            what=f"{len(daily)} days to {as_of:%d %b}",
        )
    except Exception as exc:  # noqa: BLE001 - as for every section
        report.fail("volume_chart", exc)
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
        (out / attachment_name(name)).write_bytes(data)
    for t in report.csv_tables():
        (out / attachment_name(f"{t.name}.csv")).write_bytes(t.csv_bytes())
    path = out / "report.html"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(report.html(), encoding="utf-8")
    tmp.replace(path)
    return path


def email(report: Report, sender: str, recipients: list[str], msg_id: str) -> EmailMessage:
    """The report's email: the page as its HTML part (the same text as the file), a plain-text
    summary, and the CSVs and PNG charts attached."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = header_text(f"[exops] Daily ops report {report.as_of}")
    msg["Message-ID"] = header_text(msg_id)
    msg.set_content(report.text())
    msg.add_alternative(report.html(), subtype="html")
    for t in report.csv_tables():
        msg.add_attachment(t.csv_bytes(), "text", "csv", filename=attachment_name(f"{t.name}.csv"))
    for name, data in report.charts.items():
        msg.add_attachment(data, "image", "png", filename=attachment_name(name))
    return msg
