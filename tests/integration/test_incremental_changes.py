"""Incremental builds stay equal to a full rebuild under every kind of change a delivery makes.

A small simulated landing zone is delivered in steps, with an incremental ``dbt build``
after each, on 4 dbt threads. The steps carry the changes the change window must follow
back in time (exops.transform.window):

the next days, each holding one change: a trade re-sent with an ``executed_at`` 8 days
earlier (it leaves its old day), a trade older than the late-arrival rule allows, a user
whose ``registered_at`` moves back, a user whose device becomes another user's (links, risk
alerts), a late KYC approval of a user who traded before it, a late product lifecycle
event, a user's new country (campaign controls); then re-deliveries of old partitions: a
duplicate of a trade in an earlier partition (it loses to the later one), a changed price,
a balance crossing the high-net-worth line; then the trade's later partition without it
(the earlier version wins again, read back from raw); a trades partition unloaded (``exops
unload``); a users partition without a user's latest version; then the last days. One
change per step, so that each rule alone has to bring its old days up to date.

After each step every mart and incremental table is snapshotted and a full refresh on one
dbt thread must reproduce them row for row, so no later step can hide an earlier step's
miss. The full refresh runs on a copy of the warehouse taken after the step's build, in a
process of its own, while the next step is delivered and built (a dbt build is mostly one
busy Python process: the two share the machine's cores); it builds the models only, as the
step's own build ran every data test on the relations it must equal.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from exops import transform
from exops.ingest import ingest
from exops.ingest.unload import unload
from exops.simulate import simulate

from built_warehouse import create_database, drop_database, scratch_name
from edge_cases import csv_rows, jsonl_rows

# not run again on PostgreSQL 15 (make test-pg15): the change window's rules (Python) and the
# marts' SQL, which test_marts and test_marts_reference run on PostgreSQL 15 too
pytestmark = pytest.mark.server_agnostic

START = date(2026, 3, 2)
DAYS = 31
USERS = 200
SEED = 99

COMPARED = (
    "marts.exchange_daily_kpis",
    "marts.product_daily_kpis",
    "marts.product_stage_kpis",
    "marts.user_tier_daily",
    "marts.user_tier_transitions",
    "marts.retention_cohorts",
    "marts.acquisition_funnel",
    "marts.channel_performance",
    "marts.cohort_ltv",
    "marts.campaign_performance",
    "marts.feedback_daily",
    "marts.nps_weekly",
    "marts.risk_alerts",
    "marts.dormant_recall_targets",
    "staging.stg_exchange__trades",
    "staging.stg_exchange__account_balances",
    "staging.stg_exchange__transfers",
    "staging.stg_exchange__wealth_events",
    "staging.stg_crm__kyc_events",
    "staging.stg_crm__campaign_enrollments",
    "intermediate.int_trades_priced",
    "intermediate.int_transfers_priced",
    "intermediate.int_wealth_events_priced",
    "intermediate.int_user_first_trades",
    "intermediate.int_user_product_first_trades",
    "intermediate.int_user_product_daily",
    "intermediate.int_user_activity_daily",
    "intermediate.int_user_activity_monthly",
    "intermediate.int_user_trading_weeks",
    "intermediate.int_user_tier_changes",
    "intermediate.int_user_tier_spells",
    "intermediate.int_user_links",
    "intermediate.int_risk_trade_alerts",
    "intermediate.int_campaign_trading",
    "intermediate.int_campaign_members",
    "intermediate.int_campaign_trading_daily",
    "intermediate.int_campaign_base_daily",
    "intermediate.int_campaign_excluded_trading",
    "intermediate.int_campaign_excluded_daily",
    "intermediate.int_campaign_participant_daily",
)


def day(n: int) -> date:
    """The n-th simulated day, 1-based."""
    return START + timedelta(days=n - 1)


def part_dir(landing: Path, source: str, entity: str, dt: date) -> Path:
    return landing / source / entity / f"dt={dt.isoformat()}"


def redeliver(part: Path, write) -> None:
    """Replace a partition's files the way upstream does: _SUCCESS last."""
    (part / "_SUCCESS").unlink()
    write()
    (part / "_SUCCESS").write_bytes(b"")


def write_csv(path: Path, header: list[str], rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in header})
    path.write_text(buf.getvalue(), encoding="utf-8")


def add_csv(part: Path, header: list[str], rows: list[dict], name: str = "part-00008.csv") -> None:
    redeliver(part, lambda: write_csv(part / name, header, rows))


def add_jsonl(part: Path, rows: list[dict], name: str = "part-00008.jsonl") -> None:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    redeliver(part, lambda: (part / name).write_text(text, encoding="utf-8"))


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def at(d: date, hour: int) -> str:
    return f"{d.isoformat()}T{hour:02d}:15:00Z"


def latest_users(landing: Path) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for part in sorted((landing / "crm" / "users").glob("dt=*")):
        for r in jsonl_rows(part):
            old = latest.get(r["user_id"])
            if old is None or ts(r["updated_at"]) >= ts(old["updated_at"]):
                latest[r["user_id"]] = r
    return latest


def trades_of(landing: Path, n: int) -> tuple[list[str], list[dict]]:
    return csv_rows(part_dir(landing, "exchange", "trades", day(n)))


def moved_trade(landing: Path) -> str:
    """A day-12 trade re-sent on day 23, executed 8 days earlier: it leaves day 12 for day 4."""
    header, old = trades_of(landing, 12)
    moved = dict(old[0], executed_at=at(day(4), 11))
    add_csv(part_dir(landing, "exchange", "trades", day(23)), header, [moved])
    return moved["trade_id"]


def late_trade(landing: Path) -> dict:
    """A new trade on day 24 executed 9 days before its partition (older than the rule)."""
    header, old = trades_of(landing, 15)
    late = dict(old[-1], trade_id="T-LATE-0001", executed_at=at(day(15), 7))
    add_csv(part_dir(landing, "exchange", "trades", day(24)), header, [late])
    return late


def late_balance(landing: Path) -> str:
    """A day-22 snapshot over the high-net-worth line, delivered on day 24 (within the rule):
    the user's tier changes two days back, for that user only (transform.window_users)."""
    header, balances = csv_rows(part_dir(landing, "exchange", "account_balances", day(22)))
    poorer = next(r for r in balances if Decimal(r["equity_usd"]) < 50000)
    richer = dict(poorer, equity_usd="250000.00")
    add_csv(part_dir(landing, "exchange", "account_balances", day(24)), header, [richer])
    return poorer["user_id"]


def user_change(landing: Path, user_id: str, n: int, **changes) -> None:
    changed = dict(latest_users(landing)[user_id], **changes, updated_at=at(day(n), 6))
    add_jsonl(part_dir(landing, "crm", "users", day(n)), [changed])


def linked_pair(landing: Path) -> tuple[str, str]:
    """Maker and taker of an early trade between two different users."""
    _, old = trades_of(landing, 6)
    t = next(t for t in old if t["maker_user_id"] != t["taker_user_id"])
    return t["maker_user_id"], t["taker_user_id"]


def late_approval(landing: Path, url: str) -> str:
    """A KYC approval delivered on day 27, dated the day before a user's last trade-before-KYC
    alert: those trades stop being alerts, long before the late-arrival window."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select subject_id, alert_date from intermediate.int_risk_trade_alerts"
            " where alert_type = 'trade_before_kyc' and alert_date < %s"
            " order by alert_date desc, subject_id limit 1",
            (day(20),),
        ).fetchone()
    assert row is not None, "the simulation has no trade before KYC before day 20"
    approval = {
        "event_id": "KYC-LATE-0001",
        "user_id": row[0],
        "kyc_level": 1,
        "status": "approved",
        "event_at": at(row[1] - timedelta(days=1), 12),
    }
    add_jsonl(part_dir(landing, "crm", "kyc_events", day(27)), [approval])
    return row[0]


def late_product_event(landing: Path) -> None:
    """An iteration release on day 28, 10 days late: the product's stages change back then."""
    events_dir = part_dir(landing, "exchange", "product_events", day(28))
    header, _ = csv_rows(events_dir)
    _, trades = trades_of(landing, 10)
    event = {
        "event_id": "PE-LATE-0001",
        "product_id": trades[0]["product_id"],
        "event_type": "iteration_released",
        "event_at": at(day(18), 9),
        "note": "late lifecycle event",
    }
    add_csv(events_dir, header, [event])


def old_redeliveries(landing: Path) -> dict[str, str]:
    """A duplicate in an earlier partition (loses), a changed price, a balance over the line;
    a completed transfer's duplicate a day earlier, twice the amount (loses too)."""
    header, later = trades_of(landing, 12)
    trade = later[1]
    dup = dict(trade)
    for c in ("quantity", "quote_amount", "maker_fee", "taker_fee"):
        dup[c] = format(Decimal(dup[c]) * 2, "f")
    add_csv(part_dir(landing, "exchange", "trades", day(10)), header, [dup])

    t_header, transfers = csv_rows(part_dir(landing, "exchange", "transfers", day(12)))
    transfer = next(t for t in transfers if t["status"] == "completed")
    earlier = dict(
        transfer,
        amount=format(Decimal(transfer["amount"]) * 2, "f"),
        created_at=iso(ts(transfer["created_at"]) - timedelta(days=1)),
    )
    add_csv(part_dir(landing, "exchange", "transfers", day(10)), t_header, [earlier])

    prices_dir = part_dir(landing, "exchange", "asset_prices", day(8))
    p_header, prices = csv_rows(prices_dir)
    for r in prices:
        if r["asset"] not in ("USD", "USDT"):
            r["usd_price"] = format(Decimal(r["usd_price"]) * Decimal("1.1"), "f")
            break

    def rewrite_prices() -> None:
        for f in prices_dir.glob("*.csv"):
            f.unlink()
        write_csv(prices_dir / "part-00000.csv", p_header, prices)

    redeliver(prices_dir, rewrite_prices)

    balances_dir = part_dir(landing, "exchange", "account_balances", day(14))
    b_header, balances = csv_rows(balances_dir)
    richer = dict(balances[0], equity_usd="150000.00")
    add_csv(balances_dir, b_header, [richer], name="part-00009.csv")
    return {"trade_id": trade["trade_id"], "transfer_id": transfer["transfer_id"]}


def drop_from_day_12(landing: Path, duplicated: dict[str, str]) -> tuple[str, str]:
    """Day 12's trades and transfers re-delivered without the duplicated trade and transfer:
    their day-10 duplicates win again (the transfer moves a day back, twice the amount). And
    the first enrollments partition re-delivered without an enrollment delivered once: it is
    gone. Returns that enrollment's campaign and user."""
    for entity, key in (("trades", "trade_id"), ("transfers", "transfer_id")):
        part = part_dir(landing, "exchange", entity, day(12))

        def drop(part: Path = part, key: str = key) -> None:
            for f in sorted(part.glob("*.csv")):
                header, rows = read_csv_file(f)
                write_csv(f, header, [r for r in rows if r[key] != duplicated[key]])

        redeliver(part, drop)

    parts = sorted((landing / "crm" / "campaign_enrollments").glob("dt=*"))
    delivered = [(p, r) for p in parts for r in jsonl_rows(p)]
    times = Counter((r["campaign_id"], r["user_id"]) for _, r in delivered)
    part, gone = next((p, r) for p, r in delivered if times[(r["campaign_id"], r["user_id"])] == 1)
    text = "".join(json.dumps(r) + "\n" for r in jsonl_rows(part) if r != gone)

    def rewrite() -> None:
        for f in part.glob("*.jsonl"):
            f.unlink()
        (part / "part-00000.jsonl").write_text(text, encoding="utf-8")

    redeliver(part, rewrite)
    return gone["campaign_id"], gone["user_id"]


def control_of_a_finished_campaign(url: str, ended_before: date) -> tuple[str, str]:
    """A control of a campaign that ended before ``ended_before`` who traded on its line while
    it ran, and a country it excludes."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            """
            select users.user_id, campaigns.excluded_countries[1]
            from staging.stg_crm__campaigns as campaigns
            inner join staging.stg_crm__users as users
                on users.registered_date < campaigns.start_date
            left join intermediate.int_user_tier_spells as tiers
                on tiers.user_id = users.user_id
                and campaigns.start_date - 1 between tiers.valid_from and tiers.valid_to
            where campaigns.end_date < %s and cardinality(campaigns.excluded_countries) > 0
                and not (coalesce(users.country, '') = any(campaigns.excluded_countries))
                and (campaigns.target_tier = 'all' or tiers.tier = campaigns.target_tier)
                and not exists (
                    select 1 from staging.stg_crm__campaign_enrollments as e
                    where e.campaign_id = campaigns.campaign_id and e.user_id = users.user_id
                )
                -- who traded on the campaign's line while it ran: the move changes its days
                and exists (
                    select 1 from intermediate.int_user_product_daily as traded
                    where traded.user_id = users.user_id
                        and traded.activity_date between campaigns.start_date
                        and campaigns.end_date
                        and coalesce(campaigns.product_line, traded.product_line)
                        = traded.product_line
                )
            order by campaigns.end_date, users.user_id
            limit 1
            """,
            (ended_before,),
        ).fetchone()
    assert row is not None, "the simulation has no finished campaign with excluded countries"
    return row[0], row[1]


def late_enrollments(landing: Path, url: str, n: int) -> dict[str, str]:
    """Enrollments delivered on day n into a campaign that ended before the change window: one
    of its controls (who leaves the controls) and a user registered after its start (never in
    its base). Only the campaign's enrolled users' trading moves."""
    user_id, _ = control_of_a_finished_campaign(url, day(n) - timedelta(days=4))
    with psycopg.connect(url) as conn:
        campaign_id, newcomer = conn.execute(
            """
            select campaigns.campaign_id, min(users.user_id)
            from staging.stg_crm__campaigns as campaigns
            inner join intermediate.int_campaign_members as members
                on members.campaign_id = campaigns.campaign_id and members.user_id = %s
            inner join staging.stg_crm__users as users
                on users.registered_date >= campaigns.start_date
            where campaigns.end_date < %s
            group by campaigns.campaign_id, campaigns.end_date
            order by campaigns.end_date, campaigns.campaign_id
            limit 1
            """,
            (user_id, day(n) - timedelta(days=4)),
        ).fetchone()
    assert newcomer is not None, "no user registered after the finished campaign started"
    rows = [
        {"campaign_id": campaign_id, "user_id": u, "enrolled_at": at(day(n), 9 + i)}
        for i, u in enumerate((user_id, newcomer))
    ]
    part = part_dir(landing, "crm", "campaign_enrollments", day(n))
    if part.exists():
        add_jsonl(part, rows)
    else:
        part.mkdir(parents=True)
        (part / "part-00000.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (part / "_SUCCESS").write_bytes(b"")
    return {"campaign_id": campaign_id, "control": user_id, "newcomer": newcomer}


def redeliver_users_without_latest(landing: Path, n: date) -> None:
    """Day n's users partition again, without its last record (a user's latest version)."""
    part = part_dir(landing, "crm", "users", n)
    rows = jsonl_rows(part)
    text = "".join(json.dumps(r) + "\n" for r in rows[:-1])

    def rewrite() -> None:
        for f in part.glob("*.jsonl"):
            f.unlink()
        (part / "part-00000.jsonl").write_text(text, encoding="utf-8")

    redeliver(part, rewrite)


def read_csv_file(path: Path) -> tuple[list[str], list[dict]]:
    reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
    return list(reader.fieldnames or []), list(reader)


def mismatches(conn: psycopg.Connection) -> dict[str, int]:
    """Rows that differ (either way) between the incremental copy and the rebuilt relations."""
    out = {}
    for relation in COMPARED:
        copy = "incremental_copy." + relation.replace(".", "__")
        diff = 0
        for left, right in ((copy, relation), (relation, copy)):
            diff += conn.execute(
                f"select count(*) from (select * from {left} except all select * from {right}) d"
            ).fetchone()[0]
        if diff:
            out[relation] = diff
    return out


REBUILD = """
import sys
from exops import transform

full = transform.build(sys.argv[1], full_refresh=True, threads=1, data_tests=False)
print(full.summary())
sys.exit(0 if full.success and full.tests_passed == 0 else 1)
"""


class FullRefreshCheck:
    """What the incremental runs built, snapshotted into a copy of the warehouse that a full
    refresh then rebuilds in a process of its own; :meth:`mismatches` waits and compares."""

    def __init__(self, url: str, server_url: str, var: Path) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("drop schema if exists incremental_copy cascade")
            conn.execute("create schema incremental_copy")
            for relation in COMPARED:
                name = relation.replace(".", "__")
                conn.execute(f"create table incremental_copy.{name} as select * from {relation}")
        self.server_url = server_url
        self.name = scratch_name("exops_rebuild")
        self.url = create_database(server_url, self.name, urlsplit(url).path.lstrip("/"))
        env = {**os.environ, "EXOPS_VAR_DIR": str(var)}  # dbt's target and logs of its own
        self.process = subprocess.Popen(
            [sys.executable, "-c", REBUILD, self.url],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def mismatches(self) -> dict[str, int]:
        output, _ = self.process.communicate()
        try:
            assert self.process.returncode == 0, output[-4000:]
            with psycopg.connect(self.url, autocommit=True) as conn:
                return mismatches(conn)
        finally:
            drop_database(self.server_url, self.name)

    def abandon(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        drop_database(self.server_url, self.name)


STEPS = (
    "moved trade",
    "late trade",
    "registration moved",
    "device changed",
    "late KYC approval",
    "late product event",
    "country changed",
    "late enrollments",
    "old partitions re-delivered",
    "winner removed by a re-delivery",
    "trades partition unloaded",
    "users partition re-delivered",
    "last days",
)


@pytest.fixture(scope="module")
def history(warehouse_url: str, server_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("incremental_changes")
    landing = root / "landing"
    simulate(landing, USERS, DAYS, START, SEED)
    facts: dict = {"diffs": {}}
    checking: list[tuple[str, FullRefreshCheck]] = []

    def compared() -> None:
        for name, check in checking:
            facts["diffs"][name] = check.mismatches()
        checking.clear()

    def load_and_build(dt_to: date | None) -> None:
        if dt_to is not None:
            report = ingest(landing, url=warehouse_url, dt_to=dt_to)
            assert not [p for p in report.partitions if p.action == "failed"]
        result = transform.build(warehouse_url, threads=4)
        assert result.success, result.summary()

    def step(name: str, dt_to: date | None) -> None:
        # after each change, what the incremental build made must equal a full rebuild (of a
        # copy, compared while the next step runs): no step can mend an earlier one's miss
        load_and_build(dt_to)
        with psycopg.connect(warehouse_url) as conn:
            facts.setdefault("windows", {})[name] = conn.execute(
                "select full_refresh, window_start, threads, all_users_start, window_users,"
                " reasons from transform.builds order by build_id desc limit 1"
            ).fetchone()
            facts.setdefault("window_users", {})[name] = dict(
                conn.execute("select user_id, from_date from transform.window_users").fetchall()
            )
        compared()  # one rebuild at a time beside the steps
        var = root / f"rebuild-{len(facts['windows'])}"
        checking.append((name, FullRefreshCheck(warehouse_url, server_url, var)))

    try:
        _deliver_steps(landing, warehouse_url, facts, load_and_build, step)
        compared()
    finally:
        for _, check in checking:  # a step failed: the rebuild beside it is not waited for
            check.abandon()
    return facts


def _deliver_steps(landing: Path, warehouse_url: str, facts: dict, load_and_build, step) -> None:
    load_and_build(day(22))
    facts["moved"] = moved_trade(landing)
    step("moved trade", day(23))
    facts["late_trade"] = late_trade(landing)
    facts["late_balance"] = late_balance(landing)
    step("late trade", day(24))
    _, day7 = trades_of(landing, 7)
    mover = day7[0]["maker_user_id"]
    facts["mover"] = mover
    first = latest_users(landing)[mover]
    user_change(
        landing, mover, 25, registered_at=iso(ts(first["registered_at"]) - timedelta(days=12))
    )
    step("registration moved", day(25))
    facts["relinked"] = user_x, user_y = linked_pair(landing)
    user_change(landing, user_x, 26, device_id=latest_users(landing)[user_y]["device_id"])
    step("device changed", day(26))
    facts["approved"] = late_approval(landing, warehouse_url)
    step("late KYC approval", day(27))
    late_product_event(landing)
    step("late product event", day(28))
    # the campaign ended before this step's dirty-from day: only the country rule reaches it
    user_id, country = control_of_a_finished_campaign(warehouse_url, day(29) - timedelta(days=4))
    user_change(landing, user_id, 29, country=country)
    step("country changed", day(29))
    # a finished campaign gains participants long after its end: neither its base nor a
    # window day of it changes, only who of it enrolled
    facts["enrolled"] = late_enrollments(landing, warehouse_url, 30)
    step("late enrollments", day(30))
    facts["duplicated"] = old_redeliveries(landing)
    step("old partitions re-delivered", day(29))
    facts["unenrolled"] = drop_from_day_12(landing, facts["duplicated"])
    step("winner removed by a re-delivery", day(29))
    # an unload takes a partition's rows away without a delivery: built without ingesting
    # (the files are still in the landing zone; the next step loads them again)
    unload("exchange", "trades", day(20), url=warehouse_url)
    step("trades partition unloaded", None)
    redeliver_users_without_latest(landing, day(25))
    step("users partition re-delivered", day(29))
    step("last days", day(DAYS))


@pytest.fixture
def db(warehouse_url: str, history: dict):
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        yield conn


@pytest.mark.parametrize("step", STEPS)
def test_incremental_build_equals_full_refresh(step: str, history: dict) -> None:
    assert history["diffs"][step] == {}, f"after '{step}': rows differ {history['diffs'][step]}"


def test_every_compared_relation_has_rows(db: psycopg.Connection) -> None:
    # a 30-day history has no dormant users yet (all are new)
    empty = [
        r
        for r in COMPARED
        if r != "marts.dormant_recall_targets"
        and db.execute(f"select count(*) from {r}").fetchone()[0] == 0
    ]
    assert empty == []


def test_the_changes_reached_the_marts(db: psycopg.Connection, history: dict) -> None:
    moved = db.execute(
        "select executed_date from staging.stg_exchange__trades where trade_id = %s",
        (history["moved"],),
    ).fetchone()
    assert moved == (day(4),)
    late = db.execute(
        "select executed_date from intermediate.int_trades_priced where trade_id = 'T-LATE-0001'"
    ).fetchone()
    assert late == (day(15),)
    dup = db.execute(
        "select _dt from staging.stg_exchange__trades where trade_id = %s",
        (history["duplicated"]["trade_id"],),
    ).fetchone()
    assert dup == (day(10),), "the earlier partition's version must win once the later is gone"
    transfer = db.execute(
        "select staged._dt, priced.created_date, priced.amount"
        " from staging.stg_exchange__transfers as staged"
        " left join intermediate.int_transfers_priced as priced using (transfer_id)"
        " where transfer_id = %s",
        (history["duplicated"]["transfer_id"],),
    ).fetchone()
    assert transfer is not None and transfer[0] == day(10)
    assert transfer[1] is not None and transfer[1] <= day(11)
    unenrolled = db.execute(
        "select count(*) from staging.stg_crm__campaign_enrollments"
        " where campaign_id = %s and user_id = %s",
        history["unenrolled"],
    ).fetchone()
    assert unenrolled == (0,), "an enrollment a re-delivery took away must be gone"
    a, b = sorted(history["relinked"])
    linked = db.execute(
        "select count(*) from marts.risk_alerts"
        " where alert_type = 'linked_account_trade' and subject_id = %s",
        (f"{a}|{b}",),
    ).fetchone()[0]
    assert linked >= 1
    rich = db.execute(
        "select count(*) from intermediate.int_user_tier_spells as spells"
        " inner join staging.stg_exchange__account_balances as balances"
        " on spells.user_id = balances.user_id and balances.snapshot_date = %s"
        " where %s between spells.valid_from and spells.valid_to"
        " and balances.equity_usd = 150000 and spells.tier = 'high_net_worth'",
        (day(14), day(14)),
    ).fetchone()[0]
    assert rich == 1
    late_rich = db.execute(
        "select tier from intermediate.int_user_tier_spells"
        " where user_id = %s and %s between valid_from and valid_to",
        (history["late_balance"], day(22)),
    ).fetchone()
    assert late_rich == ("high_net_worth",)
    enrolled = history["enrolled"]
    members = {
        user_id: (role, in_base)
        for user_id, role, in_base in db.execute(
            "select user_id, member_role, in_base from intermediate.int_campaign_members"
            " where campaign_id = %s and user_id in (%s, %s)",
            (enrolled["campaign_id"], enrolled["control"], enrolled["newcomer"]),
        )
    }
    assert members == {
        enrolled["control"]: ("participant", True),
        enrolled["newcomer"]: ("participant", False),
    }


def test_daily_runs_rebuilt_only_recent_days(history: dict) -> None:
    # the last step delivered day 31 only: every day-incremental model rebuilt from day 31
    # minus the late-arrival allowance, not from the start, on 4 threads
    assert history["windows"]["last days"][:3] == (False, day(31) - timedelta(days=3), 4)
    # the user-keyed models rebuilt every user's rows of day 31 only, and before it the rows of
    # the users of its late records (the simulator delivers 2% of them up to 3 days late)
    all_users_start, window_users = history["windows"]["last days"][3:5]
    assert all_users_start == day(31)
    assert window_users > 0


def test_each_change_rebuilt_from_its_day(history: dict) -> None:
    # each rule, not the late-arrival allowance, reached back to the changed day
    windows = history["windows"]
    assert windows["moved trade"][:2] == (False, day(4))
    assert windows["late trade"][:2] == (False, day(15))
    assert windows["users partition re-delivered"][0] is True
    assert windows["trades partition unloaded"][:2] == (False, day(20) - timedelta(days=3))
    # late enrollments reach their finished campaign by key, not by widening the window; the
    # re-delivered partition restages the staged enrollments (what it took away may have won)
    assert windows["late enrollments"][:2] == (False, day(30) - timedelta(days=3))
    # a re-delivered partition restages its staged entity: what it took away may have won
    assert {r for r in windows["winner removed by a re-delivery"][5] if "restaged" in r} == {
        "exchange/trades re-delivered: stg_exchange__trades restaged",
        "exchange/transfers re-delivered: stg_exchange__transfers restaged",
        "crm/campaign_enrollments re-delivered: stg_crm__campaign_enrollments restaged",
    }


def test_late_and_moved_records_rebuild_their_users_only(history: dict) -> None:
    # the user-keyed models rebuilt the late trade's maker and taker from its day (day 15),
    # and every user only from the partition's own day
    late = history["late_trade"]
    window_users = history["window_users"]["late trade"]
    assert history["windows"]["late trade"][3] == day(24)
    assert window_users[late["maker_user_id"]] == day(15)
    assert window_users[late["taker_user_id"]] == day(15)
    assert all(day(15) <= d < day(24) for d in window_users.values())
    # a late balance snapshot: its user from the snapshot's day (the tier changes are keyed)
    assert window_users.get(history["late_balance"], day(24)) <= day(22)
    # the moved trade's users from its new day (day 4): they traded it on day 12 before
    assert min(history["window_users"]["moved trade"].values()) == day(4)
    assert history["windows"]["moved trade"][3] == day(23)
    # a moved registration: its user from the earlier of the two registration days
    moved = history["window_users"]["registration moved"]
    assert history["mover"] in moved
    assert moved[history["mover"]] == min(moved.values())


def test_a_build_with_nothing_new_runs_no_dbt(db: psycopg.Connection, warehouse_url: str) -> None:
    # the marts were last built by the last step; a build with nothing new changes nothing
    before = db.execute("select count(*) from transform.builds").fetchone()[0]
    result = transform.build(warehouse_url)
    assert result.success and result.models_passed == 0, result.summary()
    status = db.execute(
        "select status from transform.builds order by build_id desc limit 1"
    ).fetchone()
    assert status == ("nothing",)
    assert db.execute("select count(*) from transform.builds").fetchone()[0] == before + 1
