"""Asset price paths: end-of-day USD prices and intraday prices for trades."""

from __future__ import annotations

import numpy as np

from exops.simulate.catalogue import ASSET_INDEX, ASSETS, DELISTED_PRODUCT, SPIKE_PRODUCT
from exops.simulate.scenario import Scenario

PRICE_DECIMALS = 8


class Prices:
    """``close[a, d + 1]`` is asset a's USD price at the end of day d; column 0 is the open."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator) -> None:
        n, days = len(ASSETS), scenario.days
        vol = np.array([a.daily_vol for a in ASSETS])
        # crypto moves together: a common market factor plus an idiosyncratic part
        market = rng.normal(0.0004, 1.0, size=days)
        own = rng.normal(0.0, 1.0, size=(n, days))
        crypto = np.array([a.code not in ("USD", "USDT", "EUR", "JPY", "GBP") for a in ASSETS])
        log_ret = vol[:, None] * np.where(crypto[:, None], 0.7 * market + 0.7 * own, own)
        if scenario.spike_day is not None:
            base = ASSET_INDEX[SPIKE_PRODUCT.split("-")[0]]
            log_ret[base, scenario.spike_day] += 0.22
        if scenario.has_mid_window_events:
            mochi = ASSET_INDEX[DELISTED_PRODUCT.split("-")[0]]
            log_ret[mochi, scenario.at(0.5) :] -= 0.04
            nova = ASSET_INDEX["NOVA"]
            log_ret[nova, scenario.at(0.25)] += 0.35
        close = np.empty((n, days + 1))
        close[:, 0] = [a.start_usd for a in ASSETS]
        close[:, 1:] = close[:, :1] * np.exp(np.cumsum(log_ret, axis=1))
        usdt = ASSET_INDEX["USDT"]
        close[usdt] = 1.0 + rng.normal(0, 0.0003, size=days + 1).clip(-0.002, 0.002)
        close[ASSET_INDEX["USD"]] = 1.0
        self.close = np.round(close, PRICE_DECIMALS)

    def usd(self, asset: int, day: int) -> float:
        return float(self.close[asset, day + 1])

    def usd_of(self, code: str, day: int) -> float:
        return self.usd(ASSET_INDEX[code], day)

    def intraday(self, assets: np.ndarray, day: int, frac: np.ndarray) -> np.ndarray:
        """Geometric path from the previous close to today's close."""
        prev, today = self.close[assets, day], self.close[assets, day + 1]
        return prev * (today / prev) ** frac

    def market_return(self, day: int) -> float:
        btc = ASSET_INDEX["BTC"]
        return float(self.close[btc, day + 1] / self.close[btc, day] - 1.0)

    def rows(self, day: int, price_date: str) -> list[tuple[str, str, str]]:
        out = []
        for k, a in enumerate(ASSETS):
            price = "1" if a.code == "USD" else f"{self.close[k, day + 1]:.{PRICE_DECIMALS}f}"
            out.append((a.code, price_date, price))
        return out
