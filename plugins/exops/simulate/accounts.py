"""Money in and out: transfers, wealth subscriptions/redemptions and end-of-day equity."""

from __future__ import annotations

import numpy as np

from exops.simulate.catalogue import ASSET_INDEX, ASSETS, PRODUCT_INDEX, PRODUCTS
from exops.simulate.context import Context
from exops.simulate.formats import DAY, fixed, iso, money
from exops.simulate.population import ACTIVE, COUNTRIES

FIAT_BY_COUNTRY = {
    "US": "USD", "CA": "USD", "GB": "GBP", "JP": "JPY",
    "DE": "EUR", "FR": "EUR", "ES": "EUR", "IT": "EUR", "NL": "EUR",
}  # fmt: skip
WEALTH_PRODUCTS = tuple(PRODUCT_INDEX[p.product_id] for p in PRODUCTS if p.line == "wealth")
WEALTH_APR = 0.05
LINE_BETA = np.array([0.8, 1.3, 0.05])  # exposure of a user's balance to the crypto market


class Accounts:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _asset_for(self, i: int, direction: str) -> str:
        u = self.ctx.rnd.random()
        if u < 0.2:
            return "BTC" if u < 0.13 else "ETH"
        fiat = FIAT_BY_COUNTRY.get(COUNTRIES[self.ctx.pop.country[i]])
        if fiat and u < (0.65 if direction == "deposit" else 0.45):
            return fiat
        return "USDT"

    def _transfer(self, i: int, sec: int, usd: float, direction: str, fail_p: float) -> float:
        """Write one transfer; return its USD value if it completed, else 0."""
        ctx = self.ctx
        day = ctx.day_of(sec)
        asset = self._asset_for(i, direction)
        scale = ASSETS[ASSET_INDEX[asset]].scale
        price = ctx.prices.usd_of(asset, day)
        units = max(1, int(usd / price * 10**scale))
        completed = ctx.rnd.random() >= fail_p
        row = (
            ctx.ids.new("TX"),
            ctx.pop.uid[i],
            asset,
            direction,
            fixed(units, scale),
            "completed" if completed else "failed",
            iso(sec, ctx.offset()),
        )
        ctx.writer.add("exchange/transfers", day, [row])
        return units / 10**scale * price if completed else 0.0

    def first_deposit_usd(self, i: int) -> float:
        pop, rng = self.ctx.pop, self.ctx.rng
        if pop.is_mm[i]:
            return 5_000_000.0
        if pop.is_whale[i]:
            return float(rng.lognormal(np.log(250_000), 0.7))
        return float(np.clip(rng.lognormal(np.log(400), 1.1), 20, 50_000))

    def deposit(self, i: int, sec: int, usd: float, fail_p: float = 0.06) -> bool:
        value = self._transfer(i, sec, usd, "deposit", fail_p)
        self.ctx.pop.cash[i] += value
        return value > 0

    def withdraw(self, i: int, sec: int, usd: float) -> None:
        usd = min(usd, float(self.ctx.pop.cash[i]))
        if usd >= 1:
            self.ctx.pop.cash[i] -= self._transfer(i, sec, usd, "withdrawal", 0.03)

    def _wealth_event(self, i: int, sec: int, product: int, event: str, units: int) -> None:
        ctx = self.ctx
        asset = PRODUCTS[product].base
        row = {
            "event_id": ctx.ids.new("WE"),
            "user_id": ctx.pop.uid[i],
            "product_id": PRODUCTS[product].product_id,
            "event_type": event,
            "asset": asset,
            "amount": fixed(units, ASSETS[ASSET_INDEX[asset]].scale),
            "event_at": iso(sec, ctx.offset()),
        }
        ctx.writer.add("exchange/wealth_events", ctx.day_of(sec), [tuple(row.values())])

    def _second_in(self, day: int, lo: int = 0, hi: int = DAY) -> int:
        return self.ctx.scenario.epoch(day) + int(self.ctx.rng.integers(lo, hi))

    def daily(self, day: int, wealth_boost: np.ndarray) -> None:
        """Top-ups, withdrawals and wealth moves of users who have traded before today."""
        ctx, pop, rng = self.ctx, self.ctx.pop, self.ctx.rng
        n = pop.registered_by(day)
        active = (pop.state[:n] == ACTIVE) & (pop.ft_day[:n] < day) & ~pop.is_mm[:n]
        u = rng.random((4, n))
        for i in np.flatnonzero(active & (u[0] < 0.02)).tolist():
            usd = float(rng.lognormal(np.log(300 if not pop.is_whale[i] else 50_000), 1.0))
            self.deposit(i, self._second_in(day), usd, 0.05)
        for i in np.flatnonzero(active & (u[1] < 0.012) & (pop.cash[:n] > 20)).tolist():
            self.withdraw(i, self._second_in(day), float(pop.cash[i] * rng.uniform(0.1, 0.6)))

        open_products = [
            (p, w) for p in WEALTH_PRODUCTS if (w := ctx.catalogue.window(p, day)) is not None
        ]
        if not open_products:
            return
        p_sub = 0.06 * wealth_boost[:n]
        subscribe = active & pop.wealth_prone[:n] & (u[2] < p_sub) & (pop.cash[:n] > 50)
        subscribed = np.zeros(n, bool)
        for i in np.flatnonzero(subscribe).tolist():
            held = int(pop.wealth_product[i])
            choices = [pw for pw in open_products if held < 0 or pw[0] == held]
            if not choices:
                continue
            product, (lo, hi) = choices[int(rng.integers(len(choices)))]
            asset = ASSET_INDEX[PRODUCTS[product].base]
            price = ctx.prices.usd(asset, day)
            units = int(pop.cash[i] * rng.uniform(0.2, 0.6) / price * 10 ** ASSETS[asset].scale)
            if units <= 0:
                continue
            self._wealth_event(i, self._second_in(day, lo, hi), product, "subscribe", units)
            pop.wealth_product[i] = product
            pop.wealth_units[i] += units
            subscribed[i] = True
            pop.cash[i] -= units / 10 ** ASSETS[asset].scale * price
        holders = (pop.wealth_product[:n] >= 0) & (u[3] < 0.05) & ~subscribed
        for i in np.flatnonzero(holders).tolist():
            product = int(pop.wealth_product[i])
            window = ctx.catalogue.window(product, day)
            if window is None:
                continue
            units = int(pop.wealth_units[i])
            if rng.random() < 0.5:
                units = max(1, int(units * rng.uniform(0.2, 0.8)))
            self._wealth_event(i, self._second_in(day, *window), product, "redeem", units)
            asset = ASSET_INDEX[PRODUCTS[product].base]
            pop.wealth_units[i] -= units
            if pop.wealth_units[i] == 0:
                pop.wealth_product[i] = -1
            pop.cash[i] += units / 10 ** ASSETS[asset].scale * ctx.prices.usd(asset, day)

    def on_churn(self, i: int, day: int) -> None:
        if self.ctx.rnd.random() < 0.4:
            self.withdraw(i, self._second_in(day), float(self.ctx.pop.cash[i]))

    def end_of_day(self, day: int, snapshot_date: str) -> None:
        """Market moves, wealth interest, and the ``account_balances`` snapshot."""
        ctx, pop = self.ctx, self.ctx.pop
        n = pop.registered_by(day)
        beta = LINE_BETA[pop.home_line[:n]]
        beta[pop.is_mm[:n]] = 0.0
        pop.cash[:n] = np.maximum(pop.cash[:n] * (1 + beta * ctx.prices.market_return(day)), 0)
        held = pop.wealth_product[:n] >= 0
        pop.wealth_units[:n][held] = (pop.wealth_units[:n][held] * (1 + WEALTH_APR / 365)).astype(
            np.int64
        )
        equity = pop.cash[:n].copy()
        for p in WEALTH_PRODUCTS:
            asset = ASSET_INDEX[PRODUCTS[p].base]
            mask = pop.wealth_product[:n] == p
            price = ctx.prices.usd(asset, day) / 10 ** ASSETS[asset].scale
            equity[mask] += pop.wealth_units[:n][mask] * price
        users = np.flatnonzero(equity >= 0.005)
        rows = [
            (pop.uid[i], snapshot_date, money(x))
            for i, x in zip(users.tolist(), equity[users].tolist(), strict=True)
        ]
        ctx.writer.add("exchange/account_balances", day, rows)
