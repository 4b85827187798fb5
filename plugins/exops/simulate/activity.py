"""Who stays: traders go dormant (churn), some come back, a few move country."""

from __future__ import annotations

import numpy as np

from exops.simulate.accounts import Accounts
from exops.simulate.context import Context
from exops.simulate.formats import DAY
from exops.simulate.population import ACTIVE, COUNTRIES, DORMANT

COMEBACK_PER_DAY = 0.004
EARLY_CHURN_DAYS = 7  # churn is twice as likely in the first week after the first trade
COUNTRY_MOVE_PER_DAY = 0.0003


class Activity:
    def __init__(self, ctx: Context, accounts: Accounts) -> None:
        self.ctx, self.accounts = ctx, accounts

    def run_day(self, day: int) -> None:
        ctx, pop, rng = self.ctx, self.ctx.pop, self.ctx.rng
        n = pop.registered_by(day)
        traders = (pop.state[:n] == ACTIVE) & (pop.ft_day[:n] < day)
        hazard = pop.churn[:n] * np.where(day - pop.ft_day[:n] < EARLY_CHURN_DAYS, 2.0, 1.0)
        u = rng.random((3, n))
        for i in np.flatnonzero(traders & (u[0] < hazard)).tolist():
            pop.state[i] = DORMANT
            self.accounts.on_churn(i, day)
        pop.state[:n][(pop.state[:n] == DORMANT) & (u[1] < COMEBACK_PER_DAY)] = ACTIVE
        for i in np.flatnonzero(u[2] < COUNTRY_MOVE_PER_DAY).tolist():
            if pop.is_mm[i] or pop.reg_day[i] == day:
                continue
            pop.country[i] = rng.integers(len(COUNTRIES))
            earliest = max(ctx.scenario.epoch(day), int(pop.updated_sec[i]) + 1)
            if earliest >= ctx.scenario.epoch(day) + DAY:
                continue
            ctx.emit_user(i, int(rng.integers(earliest, ctx.scenario.epoch(day) + DAY)))
