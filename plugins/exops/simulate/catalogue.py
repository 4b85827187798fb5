"""Assets, products and the product lifecycle (announced, listed, iterated, delisted)."""

from __future__ import annotations

from dataclasses import dataclass

from exops.contract import PRODUCT_LINES
from exops.simulate.formats import DAY, iso
from exops.simulate.scenario import Scenario


@dataclass(frozen=True)
class Asset:
    code: str
    start_usd: float
    daily_vol: float
    scale: int  # decimals of amounts in this asset (transfers, wealth)


ASSETS: tuple[Asset, ...] = (
    Asset("USD", 1.0, 0.0, 2),
    Asset("USDT", 1.0, 0.0004, 2),
    Asset("BTC", 61_250.0, 0.028, 8),
    Asset("ETH", 3_080.0, 0.034, 8),
    Asset("SOL", 148.0, 0.048, 6),
    Asset("XRP", 0.56, 0.042, 4),
    Asset("DOGE", 0.125, 0.055, 2),
    Asset("MOCHI", 0.0041, 0.07, 0),
    Asset("NOVA", 0.82, 0.065, 4),
    Asset("EUR", 1.085, 0.004, 2),
    Asset("JPY", 0.00668, 0.005, 0),
    Asset("GBP", 1.272, 0.004, 2),
)
ASSET_INDEX = {a.code: k for k, a in enumerate(ASSETS)}


@dataclass(frozen=True)
class Product:
    product_id: str
    line: str
    base: str
    quote: str
    display_name: str
    price_scale: int = 2
    qty_scale: int = 4
    popularity: float = 1.0

    @property
    def line_index(self) -> int:
        return PRODUCT_LINES.index(self.line)


PRODUCTS: tuple[Product, ...] = (
    Product("BTC-USDT", "spot", "BTC", "USDT", "Bitcoin / Tether", 2, 5, 30),
    Product("ETH-USDT", "spot", "ETH", "USDT", "Ether / Tether", 2, 4, 20),
    Product("SOL-USDT", "spot", "SOL", "USDT", "Solana / Tether", 3, 2, 8),
    Product("XRP-USDT", "spot", "XRP", "USDT", "XRP / Tether", 4, 1, 6),
    Product("DOGE-USDT", "spot", "DOGE", "USDT", "Dogecoin / Tether", 5, 0, 5),
    Product("ETH-BTC", "spot", "ETH", "BTC", "Ether / Bitcoin", 6, 4, 3),
    Product("BTC-USD", "spot", "BTC", "USD", "Bitcoin / US Dollar", 2, 5, 6),
    Product("MOCHI-USDT", "spot", "MOCHI", "USDT", "Mochi / Tether", 7, 0, 2),
    Product("NOVA-USDT", "spot", "NOVA", "USDT", "Nova / Tether", 4, 1, 5),
    Product("BTC-USDT-PERP", "derivatives", "BTC", "USDT", "BTC-USDT Perpetual", 1, 4, 30),
    Product("ETH-USDT-PERP", "derivatives", "ETH", "USDT", "ETH-USDT Perpetual", 2, 3, 15),
    Product("SOL-USDT-PERP", "derivatives", "SOL", "USDT", "SOL-USDT Perpetual", 3, 1, 6),
    Product("USDT-EUR", "cross_border", "USDT", "EUR", "Tether / Euro", 4, 2, 5),
    Product("USDT-JPY", "cross_border", "USDT", "JPY", "Tether / Japanese Yen", 2, 2, 4),
    Product("USDT-GBP", "cross_border", "USDT", "GBP", "Tether / Pound Sterling", 4, 2, 2),
    Product("W-USDT-FLEX", "wealth", "USDT", "USDT", "USDT Flexible Savings"),
    Product("W-BTC-30D", "wealth", "BTC", "BTC", "BTC 30-Day Fixed Term"),
    Product("W-ETH-STAKE", "wealth", "ETH", "ETH", "ETH Staking"),
)
PRODUCT_INDEX = {p.product_id: k for k, p in enumerate(PRODUCTS)}
TAKER_BPS = {"spot": 10, "derivatives": 5, "cross_border": 8}
VIP_TAKER_BPS = {"spot": 6, "derivatives": 3, "cross_border": 5}
SPIKE_PRODUCT = "DOGE-USDT"
DELISTED_PRODUCT = "MOCHI-USDT"

# (product, event_type, window fraction, second of day, note) for events inside the window
_MID_WINDOW_EVENTS = (
    ("W-ETH-STAKE", "announced", 0.05, 9 * 3600, "ETH staking coming soon"),
    ("NOVA-USDT", "announced", 0.12, 14 * 3600, "NOVA spot listing announced"),
    ("W-ETH-STAKE", "listed", 0.15, 9 * 3600, None),
    ("NOVA-USDT", "listed", 0.25, 10 * 3600, "NOVA/USDT trading opens 10:00 UTC"),
    ("SOL-USDT-PERP", "announced", 0.30, 12 * 3600, None),
    ("SOL-USDT-PERP", "listed", 0.40, 8 * 3600, "Up to 20x leverage"),
    ("BTC-USDT-PERP", "iteration_released", 0.45, 3 * 3600, "Portfolio margin v2"),
    ("MOCHI-USDT", "delisting_announced", 0.50, 11 * 3600, "Low liquidity; delisting"),
    ("W-USDT-FLEX", "iteration_released", 0.60, 2 * 3600, "APR raised to 6%"),
    ("MOCHI-USDT", "delisted", 0.62, 6 * 3600, None),
)
_LISTED_LATER = ("W-ETH-STAKE", "NOVA-USDT", "SOL-USDT-PERP")
_INITIAL_LISTING_SECOND = 1800


@dataclass(frozen=True)
class ProductEvent:
    day: int
    second: int
    product: int
    event_type: str
    note: str | None


class Catalogue:
    """The lifecycle schedule and, per day, each product's trading window."""

    def __init__(self, scenario: Scenario) -> None:
        self._scenario = scenario
        events: list[ProductEvent] = []
        for k, p in enumerate(PRODUCTS):
            if scenario.has_mid_window_events and p.product_id in _LISTED_LATER:
                continue
            events.append(ProductEvent(0, 0, k, "announced", "Launch catalogue"))
            events.append(ProductEvent(0, _INITIAL_LISTING_SECOND, k, "listed", None))
        if scenario.has_mid_window_events:
            for pid, etype, frac, second, note in _MID_WINDOW_EVENTS:
                events.append(
                    ProductEvent(scenario.at(frac), second, PRODUCT_INDEX[pid], etype, note)
                )
        events.sort(key=lambda e: (e.day, e.second, e.product))
        self.events = events
        self.event_ids = [f"PE-{k + 1:05d}" for k in range(len(events))]
        n = len(PRODUCTS)
        never = scenario.days + 1
        self.announced_day = [never] * n
        self.listed_at = [never * DAY] * n  # seconds since window start
        self.delisted_at = [never * DAY] * n
        for e in events:
            at = e.day * DAY + e.second
            if e.event_type == "announced":
                self.announced_day[e.product] = min(self.announced_day[e.product], e.day)
            elif e.event_type == "listed":
                self.listed_at[e.product] = at
            elif e.event_type == "delisted":
                self.delisted_at[e.product] = at

    def window(self, product: int, day: int) -> tuple[int, int] | None:
        """Seconds of ``day`` during which the product trades, or None."""
        lo = max(self.listed_at[product] - day * DAY, 0)
        hi = min(self.delisted_at[product] - day * DAY, DAY)
        return (lo, hi) if lo < hi else None

    def in_snapshot(self, product: int, day: int) -> bool:
        return self.announced_day[product] <= day and self.delisted_at[product] >= day * DAY

    def snapshot_rows(self, day: int) -> list[tuple[str, ...]]:
        return [
            (p.product_id, p.line, p.base, p.quote, p.display_name)
            for k, p in enumerate(PRODUCTS)
            if self.in_snapshot(k, day)
        ]

    def event_rows(self, day: int) -> list[tuple[str, ...]]:
        base = self._scenario.epoch(0)
        return [
            (
                self.event_ids[k],
                PRODUCTS[e.product].product_id,
                e.event_type,
                iso(base + e.day * DAY + e.second),
                e.note or "",
            )
            for k, e in enumerate(self.events)
            if e.day == day
        ]
