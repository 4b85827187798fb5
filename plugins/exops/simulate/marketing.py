"""Marketing spend per channel and day, consistent with the registrations it bought."""

from __future__ import annotations

import numpy as np

from exops.contract import CHANNELS
from exops.simulate.formats import money
from exops.simulate.population import PAID_CHANNELS, Population

# Cost per registration by paid channel; organic and referral cost nothing here.
COST_PER_REGISTRATION = dict(paid_search=32.0, paid_social=22.0, affiliate=38.0, app_store=16.0,
                             kol=28.0)  # fmt: skip
ALWAYS_ON_USD = 150.0  # brand campaigns run even on days that bring no sign-up


def spend_rows(pop: Population, day: int, spend_date: str, rng: np.random.Generator) -> list:
    lo, hi = np.searchsorted(pop.reg_day, day), pop.registered_by(day)
    regs = np.bincount(pop.channel[lo:hi][~pop.is_mm[lo:hi]], minlength=len(CHANNELS))
    rows = []
    for k, channel in enumerate(CHANNELS):
        usd = 0.0
        if channel in PAID_CHANNELS:
            cost = COST_PER_REGISTRATION[channel] * rng.lognormal(0, 0.2)
            usd = ALWAYS_ON_USD * rng.uniform(0.5, 1.5) + regs[k] * cost
        rows.append({"spend_date": spend_date, "channel": channel, "spend_usd": money(usd)})
    return rows
