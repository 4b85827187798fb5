"""The simulator writes a landing zone that follows the contract and holds every anomaly."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import statistics
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from exops.contract import ENTITIES, Entity
from exops.simulate import simulate

START = date(2026, 1, 5)
USERS, DAYS, SEED = 300, 20, 7
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
DECIMAL = re.compile(r"^[+-]?\d+(\.\d+)?$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
DATES = [(START + timedelta(days=d)).isoformat() for d in range(DAYS)]


def key(e: Entity) -> str:
    return f"{e.source}/{e.name}"


def read_zone(root: Path) -> dict[str, list[tuple[str, dict]]]:
    """Every record of the landing zone as (dt, record) per "source/entity"."""
    zone: dict[str, list[tuple[str, dict]]] = {}
    for e in ENTITIES:
        rows = zone.setdefault(key(e), [])
        for folder in sorted((root / e.source / e.name).glob("dt=*")):
            dt = folder.name[3:]
            for file in sorted(folder.glob("part-*")):
                with open(file, encoding="utf-8", newline="") as f:
                    if e.file_format == "csv":
                        records = [
                            {k: (v if v != "" else None) for k, v in r.items()}
                            for r in csv.DictReader(f)
                        ]
                    else:
                        records = [json.loads(line) for line in f]
                rows.extend((dt, r) for r in records)
    return zone


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("landing")
    calls: list[tuple[int, int]] = []
    counts = simulate(root, USERS, DAYS, START, SEED, progress=lambda d, n: calls.append((d, n)))
    assert calls == [(d, DAYS) for d in range(1, DAYS + 1)]
    return root, counts


@pytest.fixture(scope="module")
def zone(landing: tuple[Path, dict[str, int]]) -> dict[str, list[tuple[str, dict]]]:
    return read_zone(landing[0])


def test_same_arguments_give_identical_files(landing, tmp_path: Path) -> None:
    root, counts = landing
    again = simulate(tmp_path / "again", USERS, DAYS, START, SEED)
    other = simulate(tmp_path / "other", USERS, DAYS, START, SEED + 1)
    assert again == counts
    assert tree_digest(tmp_path / "again") == tree_digest(root)
    assert tree_digest(tmp_path / "other") != tree_digest(root)
    assert other != counts


def test_every_partition_exists_with_success_marker(landing, zone) -> None:
    root, counts = landing
    for e in ENTITIES:
        folders = sorted(p.name for p in (root / e.source / e.name).iterdir())
        assert folders == [f"dt={d}" for d in DATES], key(e)
        for dt in DATES:
            folder = root / e.source / e.name / f"dt={dt}"
            assert (folder / "_SUCCESS").read_bytes() == b""
            files = sorted(p.name for p in folder.iterdir())
            assert files == ["_SUCCESS", f"part-00000.{e.file_format}"], folder
        assert counts[key(e)] == len(zone[key(e)]), key(e)
        assert counts[key(e)] > 0, key(e)


def test_headers_and_keys_match_the_contract(landing) -> None:
    root, _ = landing
    for e in ENTITIES:
        for file in (root / e.source / e.name).glob("dt=*/part-*"):
            with open(file, encoding="utf-8", newline="") as f:
                if e.file_format == "csv":
                    assert next(csv.reader(f)) == list(e.column_names), file
                else:
                    for line in f:
                        assert list(json.loads(line)) == list(e.column_names), file


def problems(e: Entity, record: dict) -> list[str]:
    """Contract violations of one record (empty list when valid)."""
    found = []
    for c in e.columns:
        v = record.get(c.name)
        if v is None:
            if not c.nullable:
                found.append(f"{c.name} is null")
            continue
        ok = {
            "text": lambda v: isinstance(v, str),
            "decimal": lambda v: isinstance(v, str) and DECIMAL.match(v),
            "timestamp": lambda v: isinstance(v, str) and TIMESTAMP.match(v),
            "date": lambda v: isinstance(v, str) and DATE.match(v),
            "enum": lambda v, c=c: v in c.enum,
            "country": lambda v: isinstance(v, str) and COUNTRY.match(v),
            "country_list": lambda v: isinstance(v, list) and all(COUNTRY.match(x) for x in v),
            "integer": lambda v: type(v) is int,
        }[c.type](v)
        if ok and c.int_range is not None:
            ok = c.int_range[0] <= v <= c.int_range[1]
        if not ok:
            found.append(f"{c.name}={v!r} is not a valid {c.type}")
    return found


def test_values_parse_per_the_contract(zone) -> None:
    for e in ENTITIES:
        bad = [(dt, p) for dt, r in zone[key(e)] for p in problems(e, r)]
        assert bad == [], f"{key(e)}: {bad[:5]}"


def test_keys_are_unique(zone) -> None:
    for e in ENTITIES:
        if e.kind == "change_feed":
            continue
        seen = Counter(
            (dt if e.kind == "snapshot" else "",) + tuple(r[k] for k in e.key)
            for dt, r in zone[key(e)]
        )
        assert [k for k, n in seen.items() if n > 1] == [], key(e)


def test_quote_amount_is_price_times_quantity_and_fees_are_bps(zone) -> None:
    trades = [r for _, r in zone["exchange/trades"]]
    assert len(trades) > 500
    for t in trades:
        quote = Decimal(t["quote_amount"])
        assert Decimal(t["price"]) * Decimal(t["quantity"]) == quote, t["trade_id"]
        assert quote > 0
        for fee in ("maker_fee", "taker_fee"):
            assert abs(Decimal(fee and t[fee])) <= quote * Decimal("0.0011"), t["trade_id"]
    assert any(Decimal(t["maker_fee"]) < 0 for t in trades), "no maker rebate"
    assert all(Decimal(t["taker_fee"]) >= 0 for t in trades)


def test_every_trade_has_a_price_for_its_quote_asset_and_day(zone) -> None:
    quote_of = {r["product_id"]: r["quote_asset"] for _, r in zone["exchange/products"]}
    prices = {
        (r["asset"], r["price_date"]): r["usd_price"] for _, r in zone["exchange/asset_prices"]
    }
    for d in DATES:
        assert prices[("USD", d)] == "1"
        assert Decimal("0.9") < Decimal(prices[("USDT", d)]) < Decimal("1.1")
        assert Decimal("20000") < Decimal(prices[("BTC", d)]) < Decimal("200000")
    missing = {
        (quote_of[t["product_id"]], utc(t["executed_at"]).date().isoformat())
        for _, t in zone["exchange/trades"]
    } - set(prices)
    assert missing == set()
    assets = {a for a, _ in prices}
    used = {r["asset"] for _, r in zone["exchange/transfers"] + zone["exchange/wealth_events"]}
    assert used <= assets


def test_records_arrive_on_time_or_at_most_three_days_late(zone) -> None:
    late = 0
    for e in ENTITIES:
        if e.event_time is None:
            continue
        for dt, r in zone[key(e)]:
            own = r[e.event_time]
            own_day = date.fromisoformat(own) if len(own) == 10 else utc(own).date()
            lag = (date.fromisoformat(dt) - own_day).days
            assert 0 <= lag <= 3, (key(e), dt, own)
            late += lag > 0
    assert late > 0


def test_timestamps_use_z_and_offsets(zone) -> None:
    stamps = [t["executed_at"] for _, t in zone["exchange/trades"]]
    stamps += [u["updated_at"] for _, u in zone["crm/users"]]
    suffixes = Counter(s[-6:] if s[-6] in "+-" else "Z" for s in stamps)
    assert suffixes["Z"] > 0.7 * len(stamps)
    assert suffixes["+08:00"] > 0 and suffixes["-05:00"] > 0


def _product_times(zone) -> dict[str, dict[str, datetime]]:
    events: dict[str, dict[str, datetime]] = defaultdict(dict)
    for _, r in zone["exchange/product_events"]:
        events[r["product_id"]][r["event_type"]] = utc(r["event_at"])
    return events


def test_products_have_a_lifecycle_and_trade_only_while_listed(zone) -> None:
    events = _product_times(zone)
    lines = {r["product_line"] for _, r in zone["exchange/products"]}
    assert lines == {"spot", "derivatives", "cross_border", "wealth"}
    kinds = {k for ev in events.values() for k in ev}
    assert kinds == {"announced", "listed", "iteration_released", "delisting_announced", "delisted"}
    first_day = datetime.fromisoformat(DATES[0] + "T00:00:00+00:00")
    listed_later = [p for p, ev in events.items() if ev["listed"] > first_day + timedelta(days=2)]
    assert listed_later and all(events[p]["announced"] < events[p]["listed"] for p in listed_later)
    delisted = [p for p, ev in events.items() if "delisted" in ev]
    assert len(delisted) == 1
    traded = Counter()
    for _, t in zone["exchange/trades"]:
        ev, at = events[t["product_id"]], utc(t["executed_at"])
        assert ev["listed"] <= at < ev.get("delisted", datetime.max.replace(tzinfo=UTC)), t
        traded[t["product_id"]] += 1
    assert traded[delisted[0]] > 0, "the delisted product never traded"
    wealth = {
        r["product_id"] for _, r in zone["exchange/products"] if r["product_line"] == "wealth"
    }
    assert not wealth & set(traded)
    snapshots = defaultdict(set)
    for dt, r in zone["exchange/products"]:
        snapshots[dt].add(r["product_id"])
    for _, t in zone["exchange/trades"]:
        assert t["product_id"] in snapshots[utc(t["executed_at"]).date().isoformat()]


def test_anomalies_are_present(zone) -> None:
    trades = [t for _, t in zone["exchange/trades"]]
    assert any(t["maker_user_id"] == t["taker_user_id"] for t in trades), "no self-trade"

    users = {}
    for _, u in sorted(zone["crm/users"], key=lambda x: utc(x[1]["updated_at"])):
        users[u["user_id"]] = u
    referees = defaultdict(list)
    for u in users.values():
        if u["referrer_user_id"]:
            referees[u["referrer_user_id"]].append(u)
    rings = [
        ref
        for ref, kids in referees.items()
        if sum(
            k["device_id"] == users[ref]["device_id"] or k["signup_ip"] == users[ref]["signup_ip"]
            for k in kids
        )
        >= 3
    ]
    assert rings, "no referral ring"

    campaigns = {}
    for _, c in sorted(zone["crm/campaigns"], key=lambda x: utc(x[1]["updated_at"])):
        campaigns[c["campaign_id"]] = c
    restricted = [
        r
        for _, r in zone["crm/rewards"]
        if users[r["user_id"]]["country"] in campaigns[r["campaign_id"]]["excluded_countries"]
    ]
    assert restricted, "no reward paid in an excluded country"

    approved: dict[str, datetime] = {}
    for _, k in zone["crm/kyc_events"]:
        if k["status"] == "approved":
            at = utc(k["event_at"])
            approved[k["user_id"]] = min(at, approved.get(k["user_id"], at))
    far = datetime.max.replace(tzinfo=UTC)
    before_kyc = [
        t for t in trades if utc(t["executed_at"]) < approved.get(t["taker_user_id"], far)
    ]
    assert before_kyc, "no trade before KYC approval"


def test_one_product_has_a_volume_spike(zone) -> None:
    price = {
        (r["asset"], r["price_date"]): Decimal(r["usd_price"])
        for _, r in zone["exchange/asset_prices"]
    }
    quote_of = {r["product_id"]: r["quote_asset"] for _, r in zone["exchange/products"]}
    first_event = {}
    for _, r in zone["exchange/product_events"]:
        d = utc(r["event_at"]).date()
        first_event[r["product_id"]] = min(d, first_event.get(r["product_id"], d))
    volume: dict[str, Counter] = defaultdict(Counter)
    for _, t in zone["exchange/trades"]:
        d = utc(t["executed_at"]).date()
        volume[t["product_id"]][d] += (
            Decimal(t["quote_amount"]) * price[(quote_of[t["product_id"]], d.isoformat())]
        )
    spikes = []
    for product, by_day in volume.items():
        for d in (date.fromisoformat(x) for x in DATES):
            prev = [
                float(by_day[d - timedelta(days=k)])
                for k in range(1, 29)
                if d - timedelta(days=k) >= first_event[product]
            ]
            if len(prev) >= 14:
                mean, sd = statistics.mean(prev), statistics.stdev(prev)
                if float(by_day[d]) > mean + 3 * sd and float(by_day[d]) > 2 * mean:
                    spikes.append((product, d))
    assert ("DOGE-USDT", START + timedelta(days=15)) in spikes


def test_funnel_campaigns_and_feedback_have_the_expected_shapes(zone) -> None:
    statuses = defaultdict(list)
    for _, k in sorted(zone["crm/kyc_events"], key=lambda x: utc(x[1]["event_at"])):
        statuses[k["user_id"]].append(k["status"])
    assert any("rejected" in s and s[-1] == "approved" for s in statuses.values())
    assert Counter(r["status"] for _, r in zone["exchange/transfers"])["failed"] > 0
    versions = Counter(c["campaign_id"] for _, c in zone["crm/campaigns"])
    assert max(versions.values()) >= 2
    types = {c["campaign_type"] for _, c in zone["crm/campaigns"]}
    assert len(types) == 6
    assert any(c["product_line"] is None for _, c in zone["crm/campaigns"])
    assert {r["reward_type"] for _, r in zone["crm/rewards"]} >= {"bonus", "commission", "prize"}
    assert {r["event_type"] for _, r in zone["exchange/wealth_events"]} == {"subscribe", "redeem"}
    tickets = defaultdict(list)
    for _, t in zone["feedback/tickets"]:
        tickets[t["ticket_id"]].append(t)
    resolved = [v for v in tickets.values() if any(x["resolved_at"] for x in v)]
    assert resolved and any(len(v) >= 2 and v[0]["resolved_at"] is None for v in resolved)
    assert any(x["csat"] is not None for v in resolved for x in v)
    email = re.compile(r"[\w.]+@[\w.]+\.\w+")
    assert any(email.search(t["body"]) for _, t in zone["feedback/tickets"])
    assert any(
        c and email.search(c)
        for _, c in ((d, r["comment"]) for d, r in zone["feedback/survey_responses"])
    )
    spend = Counter(r["spend_date"] for _, r in zone["crm/marketing_spend"])
    assert set(spend.values()) == {7} and len(spend) == DAYS


def test_too_few_users_or_days_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="users must be at least"):
        simulate(tmp_path, 5, 10, START, 1)
    with pytest.raises(ValueError, match="days must be at least 1"):
        simulate(tmp_path, 300, 0, START, 1)
    assert list(tmp_path.iterdir()) == []
