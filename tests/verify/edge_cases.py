"""Contract-valid edge cases added to a simulated landing zone (before its first ingest).

The simulator's deliveries rarely exercise the staging rules of SOURCES.md (duplicates
across partitions and files, re-sent older versions of change-feed records, ties on
``updated_at``, same-day lifecycle events, late records with time-zone offsets). ``perturb``
adds such records as extra files (``part-00009.*``) in existing partitions, so that a build
compared with ``kpi_reference`` checks those rules too. Every change stays inside the
contract: the winning record of each key is determined by the documented rules only.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

EXTRA = "part-00009"


def _parts(landing: Path, source: str, entity: str) -> list[Path]:
    return sorted((landing / source / entity).glob("dt=*"))


def _dt(part: Path) -> date:
    return date.fromisoformat(part.name[3:])


def csv_rows(part: Path) -> tuple[list[str], list[dict]]:
    """Header and records of every CSV file of a partition, in file-name order."""
    header: list[str] = []
    rows: list[dict] = []
    for f in sorted(part.glob("*.csv")):
        reader = csv.DictReader(io.StringIO(f.read_text(encoding="utf-8-sig")))
        header = list(reader.fieldnames or header)
        rows += list(reader)
    return header, rows


def jsonl_rows(part: Path) -> list[dict]:
    """Records of every JSON Lines file of a partition, in file-name order."""
    rows = []
    for f in sorted(part.glob("*.jsonl")):
        rows += [json.loads(x) for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
    return rows


def _append_csv(part: Path, header: list[str], rows: list[dict]) -> None:
    f = part / f"{EXTRA}.csv"
    old = list(csv.DictReader(io.StringIO(f.read_text()))) if f.exists() else []
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    w.writeheader()
    for r in [*old, *rows]:
        w.writerow({k: r.get(k, "") for k in header})
    f.write_text(buf.getvalue(), encoding="utf-8")


def _append_jsonl(part: Path, rows: list[dict]) -> None:
    f = part / f"{EXTRA}.jsonl"
    text = f.read_text() if f.exists() else ""
    text += "".join(json.dumps(r) + "\n" for r in rows)
    f.write_text(text, encoding="utf-8")


def _ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _scale(v: str, k: int) -> str:
    # exact decimal string times an integer
    from decimal import Decimal

    return format(Decimal(v) * k, "f")


def perturb(landing: Path) -> list[str]:
    """Add edge-case records to ``landing``; returns a description of each."""
    done: list[str] = []
    landing = Path(landing)

    # ---- trades: a duplicate key in a later partition wins (append-only: later dt)
    tp = _parts(landing, "exchange", "trades")
    header, rows = csv_rows(tp[4])
    dup = dict(rows[0])
    for c in ("quantity", "quote_amount", "maker_fee", "taker_fee"):
        dup[c] = _scale(dup[c], 3)
    _append_csv(tp[5], header, [dup])
    done.append(f"trade {dup['trade_id']} re-sent tripled in {tp[5].name} (later dt wins)")
    # same partition, later file name wins
    header, rows = csv_rows(tp[8])
    dup = dict(rows[-1])
    for c in ("quantity", "quote_amount", "maker_fee", "taker_fee"):
        dup[c] = _scale(dup[c], 2)
    _append_csv(tp[8], header, [dup])
    done.append(f"trade {dup['trade_id']} doubled in a later file of {tp[8].name}")
    # late self-trade with an offset: executed 3 days before its partition, local date earlier
    base = dict(rows[1])
    d = _dt(tp[12]) - timedelta(days=3)
    late = dict(base)
    late["trade_id"] = "T-EDGE-000001"
    late["taker_user_id"] = late["maker_user_id"]
    late["executed_at"] = f"{(d - timedelta(days=1)).isoformat()}T22:30:00.5-03:00"  # = d 01:30Z
    _append_csv(tp[12], header, [late])
    done.append(f"late self-trade T-EDGE-000001 executed {d} (partition {tp[12].name})")

    # ---- transfers: a failed transfer corrected to completed in a later partition
    xp = _parts(landing, "exchange", "transfers")
    for i in range(3, len(xp) - 1):
        header, rows = csv_rows(xp[i])
        failed = [r for r in rows if r["status"] == "failed"]
        if failed:
            fix = dict(failed[0], status="completed")
            _append_csv(xp[i + 1], header, [fix])
            done.append(f"transfer {fix['transfer_id']} failed -> completed in {xp[i + 1].name}")
            break

    # ---- kyc: an approval re-sent as rejected in a later partition (later dt wins)
    kp = _parts(landing, "crm", "kyc_events")
    rows = jsonl_rows(kp[3])
    appr = [r for r in rows if r["status"] == "approved"]
    if appr:
        fix = dict(appr[0], status="rejected")
        _append_jsonl(kp[4], [fix])
        done.append(f"kyc {fix['event_id']} of {fix['user_id']} approved -> rejected")

    # ---- users: an older version re-sent later loses; a tie on updated_at -> later dt wins
    up = _parts(landing, "crm", "users")
    latest: dict[str, tuple[datetime, dict]] = {}
    for p in up:
        for r in jsonl_rows(p):
            t = _ts(r["updated_at"])
            if r["user_id"] not in latest or t >= latest[r["user_id"]][0]:
                latest[r["user_id"]] = (t, r)
    ids = sorted(latest)
    old = dict(latest[ids[5]][1])
    old.update(
        country="ZZ",
        acquisition_channel="kol" if old["acquisition_channel"] != "kol" else "organic",
        updated_at=_iso(_ts(old["updated_at"]) - timedelta(seconds=1)),
    )
    _append_jsonl(up[-1], [old])
    done.append(f"user {old['user_id']}: older version re-sent (must lose)")
    tie = dict(latest[ids[6]][1])
    tie["acquisition_channel"] = "kol" if tie["acquisition_channel"] != "kol" else "organic"
    tie["country"] = "US"
    tie_at = _ts(tie["updated_at"])
    # same instant written with another offset
    tie["updated_at"] = tie_at.astimezone(timezone(timedelta(hours=8))).isoformat()
    _append_jsonl(up[-1], [tie])
    done.append(f"user {tie['user_id']}: same updated_at re-sent later (must win)")

    # ---- tickets: older version loses, tie wins
    kp = _parts(landing, "feedback", "tickets")
    tl: dict[str, tuple[datetime, dict]] = {}
    for p in kp:
        for r in jsonl_rows(p):
            t = _ts(r["updated_at"])
            if r["ticket_id"] not in tl or t >= tl[r["ticket_id"]][0]:
                tl[r["ticket_id"]] = (t, r)
    tids = sorted(tl)
    old = dict(tl[tids[3]][1])
    old.update(
        csat=1 if old.get("csat") != 1 else 5,
        resolved_at=None,
        updated_at=_iso(_ts(old["updated_at"]) - timedelta(minutes=1)),
    )
    _append_jsonl(kp[-1], [old])
    tie = dict(tl[tids[4]][1])
    tie["csat"] = 5 if tie.get("csat") != 5 else 2
    tie["category"] = "other" if tie["category"] != "other" else "fees"
    _append_jsonl(kp[-1], [tie])
    done.append(f"tickets {old['ticket_id']} (older, loses), {tie['ticket_id']} (tie, wins)")

    # ---- campaigns: an older version with other excluded countries loses
    cp = _parts(landing, "crm", "campaigns")
    first = jsonl_rows(cp[0])
    if first:
        old = dict(
            first[0],
            excluded_countries=[],
            updated_at=_iso(_ts(first[0]["updated_at"]) - timedelta(days=1)),
        )
        _append_jsonl(cp[-1], [old])
        done.append(f"campaign {old['campaign_id']}: older version re-sent (must lose)")

    # ---- product events: two events at the same instant of one day -> greater event_id
    pp = _parts(landing, "exchange", "product_events")
    header, rows = csv_rows(pp[0])
    pid = sorted({r["product_id"] for r in rows})[0]
    day = _dt(tp[-1]) - timedelta(days=6)
    part = landing / "exchange" / "product_events" / f"dt={day.isoformat()}"
    if part.exists():
        at = f"{day.isoformat()}T10:00:00Z"
        ev = [
            {
                "event_id": "PE-EDGE-2",
                "product_id": pid,
                "event_type": "iteration_released",
                "event_at": at,
                "note": "edge: wins the tie",
            },
            {
                "event_id": "PE-EDGE-1",
                "product_id": pid,
                "event_type": "delisting_announced",
                "event_at": at,
                "note": "edge: loses the tie",
            },
            {
                "event_id": "PE-EDGE-3",
                "product_id": pid,
                "event_type": "announced",
                "event_at": f"{day.isoformat()}T09:59:59Z",
                "note": "edge: earlier that day",
            },
        ]
        _append_csv(part, header, ev)
        done.append(f"product {pid}: same-instant events on {day} (iteration_released wins)")

    # ---- products: an earlier snapshot with another product line is overridden
    sp = _parts(landing, "exchange", "products")
    header, rows = csv_rows(sp[1])
    if rows:
        r = dict(rows[0])
        r["product_line"] = "wealth" if r["product_line"] != "wealth" else "spot"
        _append_csv(sp[1], header, [r])
        done.append(f"product {r['product_id']}: stale line in an early snapshot")
    return done
