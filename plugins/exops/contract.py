"""The landing-zone contract (shared/spec/SOURCES.md) as data.

Everything that reads or writes landing files (simulator, loader, raw DDL, tests) takes the
column lists, types, enumerations and keys from here, so the contract lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

ColumnType = Literal[
    "text",  # any string (identifiers, names, free text)
    "decimal",  # exact decimal: [+-]digits[.digits]
    "integer",  # JSON integer (or plain digits in CSV)
    "timestamp",  # ISO 8601 with Z or +-HH:MM offset -> timestamptz
    "date",  # YYYY-MM-DD
    "enum",  # one of Column.enum, case-sensitive
    "country",  # ^[A-Z]{2}$
    "country_list",  # JSON array of countries
]
EntityKind = Literal["snapshot", "append", "change_feed", "daily"]

PG_TYPES: dict[str, str] = {
    "text": "text",
    "decimal": "numeric",
    "integer": "integer",
    "timestamp": "timestamptz",
    "date": "date",
    "enum": "text",
    "country": "text",
    "country_list": "text[]",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType = "text"
    nullable: bool = False
    enum: tuple[str, ...] = ()
    int_range: tuple[int, int] | None = None
    personal: bool = False  # personal data: never in a mart, report or email

    @property
    def pg_type(self) -> str:
        return PG_TYPES[self.type]


@dataclass(frozen=True)
class Entity:
    source: str
    name: str
    kind: EntityKind
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    event_time: str | None = None  # the record's own timestamp/date (late arrival)

    @property
    def file_format(self) -> str:
        return "csv" if self.source == "exchange" else "jsonl"

    @property
    def table(self) -> str:
        """Raw table name without schema, e.g. ``exchange_trades``."""
        return f"{self.source}_{self.name}"

    @property
    def qualified_table(self) -> str:
        return f"raw.{self.table}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


SOURCES = ("exchange", "crm", "feedback")

PRODUCT_LINES = ("spot", "derivatives", "cross_border", "wealth")
CHANNELS = ("organic", "paid_search", "paid_social", "affiliate", "referral", "app_store", "kol")
TIERS = ("new", "active", "high_net_worth", "dormant")
CAMPAIGN_TYPES = (
    "trading_competition",
    "referral_commission",
    "fee_discount",
    "position_reward",
    "new_user_bonus",
    "reactivation_bonus",
)
PRODUCT_EVENT_TYPES = (
    "announced",
    "listed",
    "iteration_released",
    "delisting_announced",
    "delisted",
)
TICKET_CHANNELS = ("chat", "email", "community", "phone")
TICKET_CATEGORIES = (
    "deposit_withdrawal",
    "trading",
    "kyc",
    "fees",
    "app_bug",
    "campaign",
    "account_security",
    "other",
)
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")


def _c(name: str, type_: ColumnType = "text", **kw) -> Column:
    return Column(name, type_, **kw)


def _enum(name: str, values: tuple[str, ...], **kw) -> Column:
    return Column(name, "enum", enum=values, **kw)


ENTITIES: tuple[Entity, ...] = (
    # ---- exchange (CSV)
    Entity(
        "exchange",
        "products",
        "snapshot",
        ("product_id",),
        (
            _c("product_id"),
            _enum("product_line", PRODUCT_LINES),
            _c("base_asset"),
            _c("quote_asset"),
            _c("display_name"),
        ),
    ),
    Entity(
        "exchange",
        "product_events",
        "append",
        ("event_id",),
        (
            _c("event_id"),
            _c("product_id"),
            _enum("event_type", PRODUCT_EVENT_TYPES),
            _c("event_at", "timestamp"),
            _c("note", nullable=True),
        ),
        event_time="event_at",
    ),
    Entity(
        "exchange",
        "trades",
        "append",
        ("trade_id",),
        (
            _c("trade_id"),
            _c("product_id"),
            _c("executed_at", "timestamp"),
            _c("price", "decimal"),
            _c("quantity", "decimal"),
            _c("quote_amount", "decimal"),
            _enum("taker_side", ("buy", "sell")),
            _c("maker_user_id"),
            _c("taker_user_id"),
            _c("maker_fee", "decimal"),
            _c("taker_fee", "decimal"),
        ),
        event_time="executed_at",
    ),
    Entity(
        "exchange",
        "transfers",
        "append",
        ("transfer_id",),
        (
            _c("transfer_id"),
            _c("user_id"),
            _c("asset"),
            _enum("direction", ("deposit", "withdrawal")),
            _c("amount", "decimal"),
            _enum("status", ("completed", "failed")),
            _c("created_at", "timestamp"),
        ),
        event_time="created_at",
    ),
    Entity(
        "exchange",
        "wealth_events",
        "append",
        ("event_id",),
        (
            _c("event_id"),
            _c("user_id"),
            _c("product_id"),
            _enum("event_type", ("subscribe", "redeem")),
            _c("asset"),
            _c("amount", "decimal"),
            _c("event_at", "timestamp"),
        ),
        event_time="event_at",
    ),
    Entity(
        "exchange",
        "asset_prices",
        "daily",
        ("asset", "price_date"),
        (_c("asset"), _c("price_date", "date"), _c("usd_price", "decimal")),
        event_time="price_date",
    ),
    Entity(
        "exchange",
        "account_balances",
        "daily",
        ("user_id", "snapshot_date"),
        (_c("user_id"), _c("snapshot_date", "date"), _c("equity_usd", "decimal")),
        event_time="snapshot_date",
    ),
    # ---- crm (JSON Lines)
    Entity(
        "crm",
        "users",
        "change_feed",
        ("user_id",),
        (
            _c("user_id"),
            _c("registered_at", "timestamp"),
            _c("country", "country"),
            _enum("acquisition_channel", CHANNELS),
            _c("referrer_user_id", nullable=True),
            _c("kyc_level", "integer", int_range=(0, 2)),
            _c("email", personal=True),
            _c("phone", nullable=True, personal=True),
            _c("device_id", personal=True),
            _c("signup_ip", personal=True),
            _c("updated_at", "timestamp"),
        ),
        event_time="updated_at",
    ),
    Entity(
        "crm",
        "kyc_events",
        "append",
        ("event_id",),
        (
            _c("event_id"),
            _c("user_id"),
            _c("kyc_level", "integer", int_range=(1, 2)),
            _enum("status", ("submitted", "approved", "rejected")),
            _c("event_at", "timestamp"),
        ),
        event_time="event_at",
    ),
    Entity(
        "crm",
        "campaigns",
        "change_feed",
        ("campaign_id",),
        (
            _c("campaign_id"),
            _enum("campaign_type", CAMPAIGN_TYPES),
            _c("name"),
            _enum("product_line", PRODUCT_LINES, nullable=True),
            _enum("target_tier", (*TIERS, "all")),
            _c("start_at", "timestamp"),
            _c("end_at", "timestamp"),
            _c("budget_usd", "decimal"),
            _c("excluded_countries", "country_list"),
            _c("updated_at", "timestamp"),
        ),
        event_time="updated_at",
    ),
    Entity(
        "crm",
        "campaign_enrollments",
        "append",
        ("campaign_id", "user_id"),
        (_c("campaign_id"), _c("user_id"), _c("enrolled_at", "timestamp")),
        event_time="enrolled_at",
    ),
    Entity(
        "crm",
        "rewards",
        "append",
        ("reward_id",),
        (
            _c("reward_id"),
            _c("campaign_id"),
            _c("user_id"),
            _enum("reward_type", ("prize", "rebate", "commission", "bonus")),
            _c("amount_usd", "decimal"),
            _c("paid_at", "timestamp"),
        ),
        event_time="paid_at",
    ),
    Entity(
        "crm",
        "marketing_spend",
        "daily",
        ("spend_date", "channel"),
        (_c("spend_date", "date"), _enum("channel", CHANNELS), _c("spend_usd", "decimal")),
        event_time="spend_date",
    ),
    # ---- feedback (JSON Lines)
    Entity(
        "feedback",
        "tickets",
        "change_feed",
        ("ticket_id",),
        (
            _c("ticket_id"),
            _c("user_id", nullable=True),
            _enum("channel", TICKET_CHANNELS),
            _enum("category", TICKET_CATEGORIES),
            _c("product_id", nullable=True),
            _enum("priority", TICKET_PRIORITIES),
            _c("created_at", "timestamp"),
            _c("first_response_at", "timestamp", nullable=True),
            _c("resolved_at", "timestamp", nullable=True),
            _c("csat", "integer", nullable=True, int_range=(1, 5)),
            _c("subject", personal=True),
            _c("body", personal=True),
            _c("updated_at", "timestamp"),
        ),
        event_time="updated_at",
    ),
    Entity(
        "feedback",
        "survey_responses",
        "append",
        ("response_id",),
        (
            _c("response_id"),
            _c("user_id", nullable=True),
            _enum("survey", ("nps", "csat")),
            _c("score", "integer", int_range=(0, 10)),
            _enum("product_line", PRODUCT_LINES, nullable=True),
            _c("comment", nullable=True, personal=True),
            _c("submitted_at", "timestamp"),
        ),
        event_time="submitted_at",
    ),
)

ENTITY_BY_PATH: dict[tuple[str, str], Entity] = {(e.source, e.name): e for e in ENTITIES}

# Columns the loader adds to every raw table (lineage back to the landing file).
RAW_META_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_load_id", "bigint not null"),
    ("_dt", "date not null"),
    ("_file", "text not null"),
    ("_line", "integer not null"),
)


def entity(source: str, name: str) -> Entity:
    try:
        return ENTITY_BY_PATH[(source, name)]
    except KeyError:
        known = ", ".join(f"{s}/{n}" for s, n in ENTITY_BY_PATH)
        raise KeyError(f"unknown entity {source}/{name}; the contract knows: {known}") from None


def entities_of(source: str) -> tuple[Entity, ...]:
    return tuple(e for e in ENTITIES if e.source == source)


def raw_table_ddl(e: Entity) -> str:
    cols = [f"{c.name} {c.pg_type}" for c in e.columns]
    cols += [f"{name} {decl}" for name, decl in RAW_META_COLUMNS]
    return f"create table if not exists {e.qualified_table} (\n  " + ",\n  ".join(cols) + "\n)"


# A landing zone written by ``exops simulate`` records its own clock, the day after its last
# partition, in this file at its root: ``exops run`` and the benchmark use it when no date is
# given, so simulated history is never future. Ingestion itself never reads it (the landing
# zone is written by upstream systems, which must not move the run's date); discovery skips it.
LANDING_CLOCK = "_exops_clock"


def write_landing_clock(landing: Path, day: date) -> None:
    (Path(landing) / LANDING_CLOCK).write_text(day.isoformat() + "\n")


def read_landing_clock(landing: Path) -> date | None:
    """The clock a simulated landing zone recorded (None when it has none)."""
    path = Path(landing) / LANDING_CLOCK
    if path.is_symlink() or not path.is_file():
        return None
    try:
        return date.fromisoformat(path.read_text().strip())
    except (OSError, ValueError):
        return None
