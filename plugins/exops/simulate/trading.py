"""Daily trades, generated vectorised per day: who trades, what, when, at which price and fee.

Amounts are integers at fixed scales (price at the product's tick, quantity at its lot
size), so ``quote_amount = price * quantity`` holds exactly in the written decimals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from exops.contract import PRODUCT_LINES
from exops.simulate.catalogue import (
    ASSET_INDEX,
    PRODUCT_INDEX,
    PRODUCTS,
    SPIKE_PRODUCT,
    TAKER_BPS,
    VIP_TAKER_BPS,
)
from exops.simulate.context import Context
from exops.simulate.formats import DAY, OFFSET_WEIGHTS, fixed_list, iso_ms_list
from exops.simulate.population import ACTIVE

TRADED_LINES = ("spot", "derivatives", "cross_border")
MAX_FEE_DECIMALS = 8
OUTAGE = (10 * 3600, 12 * 3600 + 1800)  # no matching during the incident
SPIKE_HISTORY_DAYS = 28


@dataclass
class DayTrades:
    """Per-user totals of the day (USD), by traded product line."""

    volume: np.ndarray  # (3, n)
    fees: np.ndarray  # (3, n)


class Trading:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        traded = [k for k, p in enumerate(PRODUCTS) if p.line in TRADED_LINES]
        self.products = np.array(traded)
        self.base = np.array([ASSET_INDEX[p.base] for p in PRODUCTS])
        self.quote = np.array([ASSET_INDEX[p.quote] for p in PRODUCTS])
        self.ps = np.array([p.price_scale for p in PRODUCTS])
        self.qs = np.array([p.qty_scale for p in PRODUCTS])
        self.line = np.array([PRODUCT_LINES.index(p.line) for p in PRODUCTS])
        self.taker_bps = np.array([TAKER_BPS.get(p.line, 0) for p in PRODUCTS])
        self.vip_taker_bps = np.array([VIP_TAKER_BPS.get(p.line, 0) for p in PRODUCTS])
        self.volume_history = np.zeros((len(PRODUCTS), ctx.scenario.days))
        self.market_makers = np.flatnonzero(ctx.pop.is_mm)
        self.ring = np.flatnonzero(ctx.pop.is_ring)

    # ---- who trades what, when
    def _initiators(self, day: int, mult: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pop, rng, s = self.ctx.pop, self.ctx.rng, self.ctx.scenario
        n = pop.registered_by(day)
        idx = np.flatnonzero((pop.state[:n] == ACTIVE) & (pop.ft_day[:n] <= day) & ~pop.is_mm[:n])
        first = pop.ft_day[idx] == day
        factor = 0.85 if s.date_of(day).weekday() >= 5 else 1.0
        p = np.minimum(pop.p_day[idx] * np.sqrt(mult[idx]) * factor, 1.0)
        trades_today = (rng.random(idx.size) < p) | first
        counts = np.where(trades_today, 1 + rng.poisson(pop.lam[idx] * mult[idx] * factor), 0)
        return idx, np.repeat(idx, counts)

    def _windows(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = np.zeros(len(PRODUCTS), np.int64), np.zeros(len(PRODUCTS), np.int64)
        for k in self.products.tolist():
            w = self.ctx.catalogue.window(k, day)
            if w is not None:
                lo[k], hi[k] = w
        return lo, hi

    def _pick_products(self, lines: np.ndarray, open_: np.ndarray) -> np.ndarray:
        rng = self.ctx.rng
        prod = np.empty(lines.size, np.int64)
        spot = PRODUCT_LINES.index("spot")
        for line in range(len(TRADED_LINES)):
            candidates = [k for k in self.products.tolist() if self.line[k] == line and open_[k]]
            if not candidates:
                lines = np.where(lines == line, spot, lines)
        for line in range(len(TRADED_LINES)):
            mask = lines == line
            candidates = [k for k in self.products.tolist() if self.line[k] == line and open_[k]]
            if not mask.any() or not candidates:
                continue
            w = np.array([PRODUCTS[k].popularity for k in candidates])
            prod[mask] = rng.choice(candidates, size=int(mask.sum()), p=w / w.sum())
        return prod

    def _price(
        self, day: int, prod: np.ndarray, sec: np.ndarray, notional: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Integer price (product tick) and quantity (lot) for a USD notional at ``sec``."""
        prices, rng = self.ctx.prices, self.ctx.rng
        frac = sec / DAY
        quote_usd = prices.intraday(self.quote[prod], day, frac)
        px = prices.intraday(self.base[prod], day, frac) / quote_usd
        px *= 1 + rng.normal(0, 0.0015, prod.size)
        price = np.maximum(1, np.rint(px * 10.0 ** self.ps[prod])).astype(np.int64)
        px = price / 10.0 ** self.ps[prod]
        qty = np.maximum(1, np.rint(notional / (px * quote_usd) * 10.0 ** self.qs[prod]))
        return price, qty.astype(np.int64)

    def _usd_volume(self, day: int, prod: np.ndarray, quote_amount: np.ndarray) -> np.ndarray:
        close = self.ctx.prices.close[self.quote[prod], day + 1]
        return quote_amount / 10.0 ** (self.ps[prod] + self.qs[prod]) * close

    def _spike_top_up(self, day: int, prod, sec, price, qty, pool) -> dict[str, np.ndarray] | None:
        """Whale pump trades that make sure the spike clears the volume-spike rule."""
        doge = PRODUCT_INDEX[SPIKE_PRODUCT]
        history = self.volume_history[doge, max(0, day - SPIKE_HISTORY_DAYS) : day]
        mask = prod == doge
        today = self._usd_volume(day, prod[mask], price[mask] * qty[mask]).sum()
        if history.size < 2:
            return None
        mean, sd = history.mean(), history.std(ddof=1)
        needed = 1.25 * max(mean + 3 * sd, 2 * mean) + 10_000 - today
        if needed <= 0:
            return None
        rng = self.ctx.rng
        k = int(min(200, max(3, np.ceil(needed / 250_000))))
        lo, hi = self.ctx.catalogue.window(doge, day) or (0, DAY)
        extra_sec = rng.integers(max(lo, 13 * 3600), hi, k)
        extra_prod = np.full(k, doge)
        notional = np.full(k, needed / k * 1.1)
        ep, eq = self._price(day, extra_prod, extra_sec, notional)
        makers = self.market_makers[rng.integers(self.market_makers.size, size=k)]
        takers = pool[rng.integers(pool.size, size=k)] if pool.size else makers[::-1]
        return dict(prod=extra_prod, sec=extra_sec, price=ep, qty=eq, maker=makers, taker=takers)

    def run_day(
        self,
        day: int,
        mult: np.ndarray,
        focus: np.ndarray,
        fee_discount: np.ndarray,
    ) -> DayTrades:
        pop, rng, s = self.ctx.pop, self.ctx.rng, self.ctx.scenario
        active, init = self._initiators(day, mult)
        if day == s.incident_day:
            init = init[rng.random(init.size) < 0.6]
        lines = np.where(
            rng.random(init.size) < 0.7, pop.home_line[init], rng.integers(0, 3, init.size)
        )
        f = focus[init]
        lines = np.where((f >= 0) & (rng.random(init.size) < 0.5), f, lines)
        lo, hi = self._windows(day)
        prod = self._pick_products(lines, hi > lo)
        notional = pop.cash[init] * pop.size_frac[init] * rng.lognormal(0, 0.45, init.size)
        notional *= np.where(self.line[prod] == 1, rng.uniform(2, 10, init.size), 1.0)
        if day == s.spike_day:
            pump = rng.random(init.size) < 0.15
            prod[pump] = PRODUCT_INDEX[SPIKE_PRODUCT]
            notional[pump] *= 2
        notional = np.clip(notional, 10, 500_000)

        user_lo = np.where(pop.ft_day[init] == day, pop.ft_sec[init] - s.epoch(day), 0)
        t_lo = np.maximum(lo[prod], user_lo)
        keep = t_lo < hi[prod]
        sec_f = t_lo + rng.random(init.size) * (hi[prod] - t_lo)
        if day == s.incident_day:
            keep &= (sec_f < OUTAGE[0]) | (sec_f >= OUTAGE[1])
        init, prod, notional, sec_f = init[keep], prod[keep], notional[keep], sec_f[keep]
        ms = np.floor(sec_f * 1000).astype(np.int64)
        sec = ms / 1000

        # counterparties: market makers, other traders, ring accomplices, or oneself (wash)
        t = init.size
        pool = active[pop.ft_day[active] < day]
        mm = self.market_makers[rng.integers(self.market_makers.size, size=t)]
        other = pool[rng.integers(pool.size, size=t)] if pool.size else mm
        cp = np.where(rng.random(t) < 0.55, mm, other)
        cp = np.where(cp == init, mm, cp)
        ring_pool = np.intersect1d(self.ring, pool)
        if ring_pool.size >= 2:
            ring_cp = ring_pool[rng.integers(ring_pool.size, size=t)]
            use = pop.is_ring[init] & (rng.random(t) < 0.5) & (ring_cp != init)
            cp = np.where(use, ring_cp, cp)
        cp = np.where(pop.is_wash[init] & (rng.random(t) < 0.12), init, cp)
        init_takes = rng.random(t) < np.where(pop.is_mm[cp], 0.95, 0.7)
        maker = np.where(init_takes, cp, init)
        taker = np.where(init_takes, init, cp)
        price, qty = self._price(day, prod, sec, notional)

        if day == s.spike_day:
            extra = self._spike_top_up(day, prod, sec, price, qty, pool)
            if extra is not None:
                prod = np.concatenate([prod, extra["prod"]])
                ms = np.concatenate([ms, extra["sec"].astype(np.int64) * 1000])
                price = np.concatenate([price, extra["price"]])
                qty = np.concatenate([qty, extra["qty"]])
                maker = np.concatenate([maker, extra["maker"]])
                taker = np.concatenate([taker, extra["taker"]])
        return self._book(
            day, prod, s.epoch(day) * 1000 + ms, price, qty, maker, taker, fee_discount
        )

    def _book(
        self,
        day: int,
        prod: np.ndarray,
        ms: np.ndarray,
        price: np.ndarray,
        qty: np.ndarray,
        maker: np.ndarray,
        taker: np.ndarray,
        fee_discount: np.ndarray,
    ) -> DayTrades:
        """Fees, per-user totals and the ``trades`` rows of the day, in execution order."""
        ctx, pop, rng = self.ctx, self.ctx.pop, self.ctx.rng
        order = np.argsort(ms, kind="stable")
        prod, ms, price, qty = prod[order], ms[order], price[order], qty[order]
        maker, taker = maker[order], taker[order]
        t = prod.size
        quote_amount = price * qty
        spot = PRODUCT_LINES.index("spot")
        vip_taker = pop.is_whale[taker] | pop.is_mm[taker]
        taker_bps = np.where(vip_taker, self.vip_taker_bps[prod], self.taker_bps[prod])
        taker_bps = np.where(fee_discount[taker] & (self.line[prod] == spot), 5, taker_bps)
        maker_bps = np.where(pop.is_mm[maker], -1, np.where(pop.is_whale[maker], 1, 2))
        raw_scale = self.ps[prod] + self.qs[prod] + 4
        fee_scale = np.minimum(raw_scale, MAX_FEE_DECIMALS)
        div = (10 ** (raw_scale - fee_scale)).astype(np.int64)
        taker_fee = (quote_amount * taker_bps + div // 2) // div
        maker_fee = (quote_amount * maker_bps + div // 2) // div

        volume = self._usd_volume(day, prod, quote_amount)
        close = ctx.prices.close[self.quote[prod], day + 1]
        maker_fee_usd = maker_fee / 10.0**fee_scale * close
        taker_fee_usd = taker_fee / 10.0**fee_scale * close
        n = pop.n
        line = self.line[prod]
        user_volume = np.zeros((len(TRADED_LINES), n))
        user_fees = np.zeros((len(TRADED_LINES), n))
        self_trade = maker == taker
        for k in range(len(TRADED_LINES)):
            m = line == k
            user_volume[k] = np.bincount(maker[m], volume[m], n) + np.bincount(
                taker[m & ~self_trade], volume[m & ~self_trade], n
            )
            user_fees[k] = np.bincount(maker[m], maker_fee_usd[m], n) + np.bincount(
                taker[m], taker_fee_usd[m], n
            )
        np.add.at(self.volume_history[:, day], prod, volume)
        pnl = np.bincount(taker, volume * rng.normal(0, 0.006, t), n)
        pop.cash[:] = np.maximum(pop.cash + pnl - user_fees.sum(axis=0), 0)
        pop.last_trade_day[np.union1d(maker, taker)] = day

        self._write(day, prod, ms, price, qty, quote_amount, maker, taker, maker_fee, taker_fee)
        return DayTrades(user_volume, user_fees)

    def _write(self, day, prod, ms, price, qty, quote_amount, maker, taker, maker_fee, taker_fee):
        ctx, rng = self.ctx, self.ctx.rng
        t = prod.size
        if t == 0:
            return
        cols = [np.empty(t, object) for _ in range(5)]
        for k in np.unique(prod).tolist():
            pos = np.flatnonzero(prod == k)
            ps, qs = int(self.ps[k]), int(self.qs[k])
            fs = min(ps + qs + 4, MAX_FEE_DECIMALS)
            cols[0][pos] = fixed_list(price[pos], ps)
            cols[1][pos] = fixed_list(qty[pos], qs)
            cols[2][pos] = fixed_list(quote_amount[pos], ps + qs)
            cols[3][pos] = fixed_list(maker_fee[pos], fs)
            cols[4][pos] = fixed_list(taker_fee[pos], fs)
        first = ctx.ids.take("T", t)
        ids = [f"T-{k:09d}" for k in range(first, first + t)]
        pids = [PRODUCTS[k].product_id for k in prod.tolist()]
        when = iso_ms_list(ms, rng.choice(3, size=t, p=OFFSET_WEIGHTS))
        pumped = (prod == PRODUCT_INDEX[SPIKE_PRODUCT]) & (day == ctx.scenario.spike_day)
        buy = np.where(pumped, 0.7, 0.5)
        sides = np.where(rng.random(t) < buy, "buy", "sell").tolist()
        uid = ctx.pop.uid
        rows = list(
            zip(
                ids,
                pids,
                when,
                cols[0].tolist(),
                cols[1].tolist(),
                cols[2].tolist(),
                sides,
                [uid[i] for i in maker.tolist()],
                [uid[i] for i in taker.tolist()],
                cols[3].tolist(),
                cols[4].tolist(),
                strict=True,
            )
        )
        ctx.writer.add("exchange/trades", day, rows)
