"""CRM campaigns: definitions and versions, enrollment, effect on trading, and rewards."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from exops.contract import PRODUCT_LINES
from exops.simulate.catalogue import ASSET_INDEX, ASSETS, PRODUCTS
from exops.simulate.context import Context
from exops.simulate.formats import DAY, iso, money
from exops.simulate.population import ACTIVE, COUNTRIES, DORMANT


@dataclass(frozen=True)
class CampaignDef:
    campaign_id: str
    campaign_type: str
    name: str
    product_line: str | None
    target_tier: str
    start: float  # window fractions
    end: float
    budget_usd: float
    excluded: tuple[str, ...]
    boost: float  # participants' trading multiplier while it runs
    reward_type: str


CAMPAIGNS: tuple[CampaignDef, ...] = (
    CampaignDef("C-0001", "new_user_bonus", "Welcome bonus up to 50 USDT", None, "new",
                0.03, 0.45, 50_000, ("US", "CA"), 1.3, "bonus"),
    CampaignDef("C-0002", "trading_competition", "Perpetuals Trading Cup", "derivatives",
                "active", 0.30, 0.48, 100_000, ("US",), 2.2, "prize"),
    CampaignDef("C-0003", "fee_discount", "Half-price spot taker fees", "spot", "active",
                0.50, 0.70, 60_000, (), 1.6, "rebate"),
    CampaignDef("C-0004", "referral_commission", "Invite friends, earn 20% of their fees",
                None, "all", 0.10, 0.90, 80_000, ("US", "JP"), 1.15, "commission"),
    CampaignDef("C-0005", "position_reward", "VIP savings boost", "wealth", "high_net_worth",
                0.40, 0.80, 40_000, ("GB",), 1.0, "bonus"),
    CampaignDef("C-0006", "reactivation_bonus", "We miss you: 20 USDT back", None, "dormant",
                0.70, 0.95, 30_000, (), 1.8, "bonus"),
)  # fmt: skip
NEW_USER, COMPETITION, FEE_DISCOUNT, REFERRAL, POSITION, REACTIVATION = range(6)
# The competition is extended while it runs: a later version of the same campaign.
EXTENSION = dict(campaign=COMPETITION, at=0.38, second=15 * 3600 + 1800, end=0.55, budget=150_000)
PRIZES = (5000, 3000, 2000, 1000, 1000, 1000, 500, 500, 500, 500)


class Campaigns:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        s, n = ctx.scenario, ctx.pop.n
        self.start_day = [s.at(c.start) for c in CAMPAIGNS]
        self.end_day = [s.at(c.end) for c in CAMPAIGNS]
        self.versions: list[tuple[int, int, int, int, float]] = []  # day, second, c, end, budget
        for k, c in enumerate(CAMPAIGNS):
            announce = max(0, self.start_day[k] - 3)
            self.versions.append((announce, 9 * 3600, k, self.end_day[k], c.budget_usd))
        ext = EXTENSION
        ext_day = min(max(s.at(ext["at"]), self.start_day[COMPETITION]), s.days - 1)
        ext_end = max(s.at(ext["end"]), self.end_day[COMPETITION])
        self.versions.append((ext_day, ext["second"], COMPETITION, ext_end, ext["budget"]))
        self.end_day[COMPETITION] = ext_end
        self.enrolled = np.zeros((len(CAMPAIGNS), n), bool)
        self.excluded = np.zeros((len(CAMPAIGNS), len(COUNTRIES)), bool)
        for k, c in enumerate(CAMPAIGNS):
            for code in c.excluded:
                self.excluded[k, COUNTRIES.index(code)] = True
        self.competition_volume = np.zeros(n)
        self.spot_fees = np.zeros(n)
        self.referee_fees = np.zeros(n)
        self.bonus_paid = np.zeros(n, bool)
        self.reactivation_pending = np.zeros(n, bool)
        self.excluded_reward_paid = False

    def running(self, c: int, day: int) -> bool:
        return self.start_day[c] <= day <= self.end_day[c]

    def _is_excluded(self, c: int, i: int) -> bool:
        return bool(self.excluded[c, self.ctx.pop.country[i]])

    def emit_definitions(self, day: int) -> None:
        ctx = self.ctx
        rows = []
        for vday, second, k, end, budget in self.versions:
            if vday != day:
                continue
            c, off = CAMPAIGNS[k], ctx.offset()
            rows.append(
                {
                    "campaign_id": c.campaign_id,
                    "campaign_type": c.campaign_type,
                    "name": c.name,
                    "product_line": c.product_line,
                    "target_tier": c.target_tier,
                    "start_at": iso(ctx.scenario.epoch(self.start_day[k]), off),
                    "end_at": iso(ctx.scenario.epoch(end) + DAY - 1, off),
                    "budget_usd": money(budget),
                    "excluded_countries": list(c.excluded),
                    "updated_at": iso(ctx.scenario.epoch(vday) + second, off),
                }
            )
        ctx.writer.add("crm/campaigns", day, rows)

    def enroll(self, c: int, i: int, sec: int) -> None:
        if self.enrolled[c, i] or self.ctx.day_of(sec) >= self.ctx.scenario.days:
            return
        self.enrolled[c, i] = True
        row = {
            "campaign_id": CAMPAIGNS[c].campaign_id,
            "user_id": self.ctx.pop.uid[i],
            "enrolled_at": iso(sec, self.ctx.offset()),
        }
        self.ctx.writer.add("crm/campaign_enrollments", self.ctx.day_of(sec), [row])

    def reward(self, c: int, i: int, sec: int, usd: float) -> None:
        ctx = self.ctx
        if ctx.day_of(sec) >= ctx.scenario.days or usd < 0.01:
            return
        if self._is_excluded(c, i):
            self.excluded_reward_paid = True
        row = {
            "reward_id": ctx.ids.new("R"),
            "campaign_id": CAMPAIGNS[c].campaign_id,
            "user_id": ctx.pop.uid[i],
            "reward_type": CAMPAIGNS[c].reward_type,
            "amount_usd": money(usd),
            "paid_at": iso(sec, ctx.offset()),
        }
        ctx.writer.add("crm/rewards", ctx.day_of(sec), [row])
        ctx.pop.cash[i] += usd

    # ---- hooks called by the funnel
    def on_registration(self, i: int, sec: int) -> None:
        day, rnd = self.ctx.day_of(sec), self.ctx.rnd
        if self.running(NEW_USER, day):
            # the sign-up form does not check the exclusion list: a few slip through
            if rnd.random() < (0.05 if self._is_excluded(NEW_USER, i) else 0.5):
                self.enroll(NEW_USER, i, sec + rnd.randint(30, 900))
        ref = int(self.ctx.pop.referrer[i])
        if ref >= 0 and self.running(REFERRAL, day) and not self._is_excluded(REFERRAL, ref):
            self.enroll(REFERRAL, ref, sec)

    def on_deposit(self, i: int, sec: int) -> None:
        if self.enrolled[NEW_USER, i] and not self.bonus_paid[i]:
            if self.ctx.day_of(sec) <= self.end_day[NEW_USER] + 7:
                self.bonus_paid[i] = True
                bonus = self.ctx.rnd.choice((10, 20, 20, 30, 50))
                self.reward(NEW_USER, i, sec + self.ctx.rnd.randint(60, 3600), bonus)

    # ---- daily
    def _second(self, day: int, lo: int = 0, hi: int = DAY) -> int:
        return self.ctx.scenario.epoch(day) + self.ctx.rnd.randrange(lo, hi)

    def enroll_daily(self, day: int, equity_hint: np.ndarray) -> list[int]:
        """Opt-ins of the day; returns users that a reactivation campaign brought back."""
        pop, rng = self.ctx.pop, self.ctx.rng
        n = pop.registered_by(day)
        traders = (pop.state[:n] == ACTIVE) & (pop.ft_day[:n] < day) & ~pop.is_mm[:n]
        targets = {
            COMPETITION: (traders, 0.12 if day - self.start_day[COMPETITION] < 3 else 0.04),
            FEE_DISCOUNT: (traders, 0.04),
            POSITION: (traders & (pop.is_whale[:n] | (equity_hint[:n] >= 50_000)), 0.15),
            REACTIVATION: ((pop.state[:n] == DORMANT) & (pop.ft_day[:n] < day), 0.05),
        }
        back = []
        for c, (eligible, p) in targets.items():
            if not self.running(c, day):
                continue
            mask = eligible & ~self.enrolled[c, :n] & ~self.excluded[c, pop.country[:n]]
            for i in np.flatnonzero(mask & (rng.random(n) < p)).tolist():
                self.enroll(c, i, self._second(day, 0, DAY - 7200))
                if c == REACTIVATION and rng.random() < 0.4:
                    pop.state[i] = ACTIVE
                    self.reactivation_pending[i] = True
                    back.append(i)
        return back

    def effects(self, day: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per user: trade multiplier, focus product line (-1 none), fee discount, wealth boost."""
        n = self.ctx.pop.n
        mult, focus = np.ones(n), np.full(n, -1, np.int8)
        discount, wealth = np.zeros(n, bool), np.ones(n)
        for k, c in enumerate(CAMPAIGNS):
            if not self.running(k, day):
                continue
            m = self.enrolled[k]
            mult[m] *= c.boost
            if c.product_line in ("spot", "derivatives"):
                focus[m & (focus < 0)] = PRODUCT_LINES.index(c.product_line)
            if k == FEE_DISCOUNT:
                discount |= m
            if k == POSITION:
                wealth[m] = 3.0
        return mult, focus, discount, wealth

    def after_trades(self, day: int, volume: np.ndarray, fees: np.ndarray) -> None:
        """Accumulate campaign metrics from the day's trades and pay what is due."""
        pop, rnd = self.ctx.pop, self.ctx.rnd
        spot, deriv = PRODUCT_LINES.index("spot"), PRODUCT_LINES.index("derivatives")
        if self.running(COMPETITION, day):
            self.competition_volume += np.where(self.enrolled[COMPETITION], volume[deriv], 0)
        if self.running(FEE_DISCOUNT, day):
            self.spot_fees += np.where(self.enrolled[FEE_DISCOUNT], fees[spot], 0)
        if self.running(REFERRAL, day):
            self.referee_fees += np.where(pop.referrer >= 0, fees.sum(axis=0), 0)
            if (day - self.start_day[REFERRAL]) % 7 == 6 or day == self.end_day[REFERRAL]:
                has_ref = np.flatnonzero((pop.referrer >= 0) & (self.referee_fees > 0))
                owed = np.bincount(
                    pop.referrer[has_ref], self.referee_fees[has_ref], minlength=pop.n
                )
                for i in np.flatnonzero((owed * 0.2 >= 0.01) & self.enrolled[REFERRAL]).tolist():
                    self.reward(REFERRAL, i, self._second(day, 20 * 3600, 22 * 3600), owed[i] * 0.2)
                self.referee_fees[:] = 0
        payday = day - 1
        if payday == self.end_day[COMPETITION]:
            ranked = np.argsort(-self.competition_volume, kind="stable")[: len(PRIZES)]
            for prize, i in zip(PRIZES, ranked.tolist(), strict=True):
                if self.competition_volume[i] > 0:
                    self.reward(COMPETITION, i, self._second(day, 12 * 3600, 13 * 3600), prize)
        if payday == self.end_day[FEE_DISCOUNT]:
            for i in np.flatnonzero(self.spot_fees * 0.3 >= 0.01).tolist():
                self.reward(
                    FEE_DISCOUNT, i, self._second(day, 3600, 6 * 3600), self.spot_fees[i] * 0.3
                )
        if payday == self.end_day[POSITION]:
            for i in np.flatnonzero(self.enrolled[POSITION] & (pop.wealth_units > 0)).tolist():
                product = PRODUCTS[int(pop.wealth_product[i])]
                asset = ASSET_INDEX[product.base]
                units = int(pop.wealth_units[i]) / 10 ** ASSETS[asset].scale
                bonus = min(2_000.0, 0.004 * units * self.ctx.prices.usd(asset, day))
                self.reward(POSITION, i, self._second(day, 8 * 3600, 9 * 3600), bonus)
        traded = pop.last_trade_day == day
        for i in np.flatnonzero(self.reactivation_pending & traded).tolist():
            self.reactivation_pending[i] = False
            self.reward(REACTIVATION, i, self._second(day, 23 * 3600, DAY), rnd.choice((5, 10, 20)))
        if day == self.end_day[NEW_USER] and not self.excluded_reward_paid:
            self._pay_one_excluded_user(day)

    def _pay_one_excluded_user(self, day: int) -> None:
        """Manual goodwill bonus that ignores the exclusion list (the anomaly to detect)."""
        pop = self.ctx.pop
        n = pop.registered_by(day)
        excluded = np.flatnonzero(self.excluded[NEW_USER, pop.country[:n]] & ~pop.is_mm[:n])
        if excluded.size:
            i = int(excluded[0])
            self.enroll(NEW_USER, i, self._second(day, 19 * 3600, 20 * 3600))
            self.reward(NEW_USER, i, self._second(day, 21 * 3600, 22 * 3600), 25.0)
