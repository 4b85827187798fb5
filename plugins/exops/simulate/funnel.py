"""Onboarding: registration -> KYC -> deposit -> first trade, as a time-ordered event queue.

Only users in the middle of onboarding have pending events, so the queue stays small.
"""

from __future__ import annotations

import heapq

import numpy as np

from exops.contract import CHANNELS
from exops.simulate.accounts import Accounts
from exops.simulate.campaigns import Campaigns
from exops.simulate.context import Context
from exops.simulate.formats import DAY, iso
from exops.simulate.population import ACTIVE

REGISTER, KYC_SUBMIT, KYC_DECIDE, DEPOSIT, FIRST_TRADE, KYC2_SUBMIT, KYC2_DECIDE = range(7)
HOUR = 3600
# chance of taking each step, by channel: paid social users drop off the most
P_KYC = dict(organic=0.78, paid_search=0.62, paid_social=0.42, affiliate=0.55, referral=0.74,
             app_store=0.6, kol=0.5)  # fmt: skip
P_DEPOSIT = dict(organic=0.74, paid_search=0.64, paid_social=0.5, affiliate=0.52, referral=0.72,
                 app_store=0.6, kol=0.62)  # fmt: skip
P_TRADE = dict(organic=0.86, paid_search=0.82, paid_social=0.72, affiliate=0.75, referral=0.88,
               app_store=0.8, kol=0.9)  # fmt: skip


class Funnel:
    def __init__(self, ctx: Context, accounts: Accounts, campaigns: Campaigns) -> None:
        self.ctx, self.accounts, self.campaigns = ctx, accounts, campaigns
        self._queue: list[tuple[int, int, int, int]] = []
        self._seq = 0

    def _at(self, sec: int, user: int, action: int) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (sec, self._seq, user, action))

    def _hours(self, median: float, sigma: float = 1.0) -> int:
        return max(60, int(self.ctx.rng.lognormal(np.log(median * HOUR), sigma)))

    def run_day(self, day: int) -> None:
        pop = self.ctx.pop
        first = int(np.searchsorted(pop.reg_day, day))
        for i in range(first, pop.registered_by(day)):
            self._at(int(pop.reg_sec[i]), i, REGISTER)
        end = self.ctx.scenario.epoch(day) + DAY
        while self._queue and self._queue[0][0] < end:
            sec, _, i, action = heapq.heappop(self._queue)
            self._handle(sec, i, action)

    def _kyc_event(self, i: int, sec: int, level: int, status: str) -> None:
        ctx = self.ctx
        row = {
            "event_id": ctx.ids.new("K"),
            "user_id": ctx.pop.uid[i],
            "kyc_level": level,
            "status": status,
            "event_at": iso(sec, ctx.offset()),
        }
        ctx.writer.add("crm/kyc_events", ctx.day_of(sec), [row])

    def _handle(self, sec: int, i: int, action: int) -> None:
        ctx, pop, rnd = self.ctx, self.ctx.pop, self.ctx.rnd
        channel = CHANNELS[pop.channel[i]]
        forced = bool(pop.forced[i])
        quick = bool(pop.is_mm[i])
        if action == REGISTER:
            ctx.emit_user(i, sec)
            self.campaigns.on_registration(i, sec)
            if quick:
                self._at(sec + 120, i, KYC_SUBMIT)
            elif pop.pre_kyc[i]:
                self._at(sec + self._hours(1.5), i, DEPOSIT)
            elif forced or rnd.random() < P_KYC[channel]:
                self._at(sec + (900 if forced else self._hours(3, 1.3)), i, KYC_SUBMIT)
        elif action == KYC_SUBMIT:
            pop.kyc_attempts[i] += 1
            self._kyc_event(i, sec, 1, "submitted")
            self._at(sec + (120 if quick else self._hours(6)), i, KYC_DECIDE)
        elif action == KYC_DECIDE:
            p_ok = 0.85 if pop.kyc_attempts[i] == 1 else 0.9
            if quick or (forced and not pop.pre_kyc[i]) or rnd.random() < p_ok:
                self._kyc_event(i, sec, 1, "approved")
                pop.kyc_level[i] = 1
                pop.approved_sec[i] = sec
                ctx.emit_user(i, sec)
                if pop.is_whale[i] or quick:
                    self._at(sec + (60 if quick else self._hours(48)), i, KYC2_SUBMIT)
                if not pop.pre_kyc[i] and (forced or rnd.random() < P_DEPOSIT[channel]):
                    self._at(sec + (300 if quick else self._hours(10, 1.3)), i, DEPOSIT)
            else:
                self._kyc_event(i, sec, 1, "rejected")
                if forced or rnd.random() < 0.6:
                    self._at(sec + self._hours(20), i, KYC_SUBMIT)
        elif action == DEPOSIT:
            fail_p = 0.0 if forced else 0.07
            if self.accounts.deposit(i, sec, self.accounts.first_deposit_usd(i), fail_p):
                self.campaigns.on_deposit(i, sec)
                if pop.ft_sec[i] < 0 and (forced or rnd.random() < P_TRADE[channel]):
                    self._at(sec + (60 if quick else self._hours(2, 1.3)), i, FIRST_TRADE)
            elif rnd.random() < 0.7:
                self._at(sec + self._hours(1), i, DEPOSIT)
        elif action == FIRST_TRADE:
            pop.state[i] = ACTIVE
            pop.ft_sec[i] = sec
            pop.ft_day[i] = ctx.day_of(sec)
            if pop.pre_kyc[i] and pop.kyc_attempts[i] == 0:
                self._at(sec + self._hours(20), i, KYC_SUBMIT)
        elif action == KYC2_SUBMIT:
            self._kyc_event(i, sec, 2, "submitted")
            self._at(sec + (60 if quick else self._hours(24)), i, KYC2_DECIDE)
        elif action == KYC2_DECIDE:
            if quick or rnd.random() < 0.9:
                self._kyc_event(i, sec, 2, "approved")
                pop.kyc_level[i] = 2
                ctx.emit_user(i, sec)
            else:
                self._kyc_event(i, sec, 2, "rejected")
