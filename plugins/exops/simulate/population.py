"""The user population: registration schedule, channels, countries, roles and per-user state.

All per-user state lives in fixed-size numpy arrays (one slot per user, registered or not),
so memory depends on the number of users only, never on the number of days or trades.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from exops.contract import CHANNELS
from exops.simulate.fake import Person, person
from exops.simulate.formats import DAY, iso, user_id
from exops.simulate.scenario import Scenario

PROSPECT, ACTIVE, DORMANT = 0, 1, 2

COUNTRIES = (
    "US", "GB", "DE", "FR", "ES", "IT", "NL", "JP", "KR", "SG",
    "HK", "AU", "CA", "BR", "IN", "TR", "VN", "PH", "NG", "AE",
)  # fmt: skip
COUNTRY_WEIGHTS = (
    11, 8, 7, 5, 4, 4, 3, 7, 6, 5,
    4, 4, 3, 5, 6, 5, 4, 4, 3, 2,
)  # fmt: skip
CHANNEL_SHARE = dict(
    organic=0.26,
    paid_search=0.16,
    paid_social=0.18,
    affiliate=0.10,
    referral=0.12,
    app_store=0.10,
    kol=0.08,
)
PAID_CHANNELS = ("paid_search", "paid_social", "affiliate", "app_store", "kol")
# Probability per day of an active trader going dormant, by channel (paid social churns most).
CHURN_HAZARD = dict(
    organic=0.014,
    paid_search=0.02,
    paid_social=0.034,
    affiliate=0.028,
    referral=0.016,
    app_store=0.024,
    kol=0.03,
)
MARKET_MAKERS = 3
RING_REFEREES = 4


@dataclass
class Population:
    n: int
    reg_sec: np.ndarray  # registration instant, Unix seconds (sorted)
    reg_day: np.ndarray
    channel: np.ndarray
    country: np.ndarray
    referrer: np.ndarray  # -1 = none
    device_owner: np.ndarray  # whose device id this user signed up with
    ip_owner: np.ndarray
    is_mm: np.ndarray
    is_whale: np.ndarray
    is_wash: np.ndarray
    is_ring: np.ndarray
    pre_kyc: np.ndarray  # trades before its KYC is approved
    forced: np.ndarray  # always completes the funnel (scripted anomalies)
    p_day: np.ndarray  # chance of trading on a given day while active
    lam: np.ndarray  # extra trades on a trading day (Poisson mean)
    size_frac: np.ndarray  # typical trade notional as a share of equity
    home_line: np.ndarray
    churn: np.ndarray
    wealth_prone: np.ndarray
    ring_referrer: int
    uid: list[str]
    seed: int
    state: np.ndarray = field(init=False)
    kyc_level: np.ndarray = field(init=False)
    kyc_attempts: np.ndarray = field(init=False)
    approved_sec: np.ndarray = field(init=False)
    ft_sec: np.ndarray = field(init=False)
    ft_day: np.ndarray = field(init=False)
    last_trade_day: np.ndarray = field(init=False)
    cash: np.ndarray = field(init=False)  # USD value of everything but wealth positions
    wealth_product: np.ndarray = field(init=False)
    wealth_units: np.ndarray = field(init=False)  # integer units at the asset's scale
    updated_sec: np.ndarray = field(init=False)  # latest CRM record sent

    def __post_init__(self) -> None:
        n = self.n
        self.state = np.zeros(n, np.int8)
        self.kyc_level = np.zeros(n, np.int8)
        self.kyc_attempts = np.zeros(n, np.int8)
        self.approved_sec = np.full(n, -1, np.int64)
        self.ft_sec = np.full(n, -1, np.int64)
        self.ft_day = np.full(n, 1 << 30, np.int32)
        self.last_trade_day = np.full(n, -1, np.int32)
        self.cash = np.zeros(n)
        self.wealth_product = np.full(n, -1, np.int8)
        self.wealth_units = np.zeros(n, np.int64)
        self.updated_sec = np.zeros(n, np.int64)

    def person(self, i: int) -> Person:
        return person(self.seed, i, COUNTRIES[self.country[i]])

    def stranger(self, k: int) -> Person:
        """Someone who is not (or not known as) a user, e.g. an anonymous ticket writer."""
        return person(self.seed, self.n + k, COUNTRIES[k % len(COUNTRIES)])

    def record(self, i: int, updated_sec: int, offset: int) -> dict:
        """The user's full current state, as the CRM change feed sends it."""
        me = self.person(i)
        device = me if self.device_owner[i] == i else self.person(int(self.device_owner[i]))
        ip = me if self.ip_owner[i] == i else self.person(int(self.ip_owner[i]))
        ref = int(self.referrer[i])
        return {
            "user_id": self.uid[i],
            "registered_at": iso(int(self.reg_sec[i]), offset),
            "country": COUNTRIES[self.country[i]],
            "acquisition_channel": CHANNELS[self.channel[i]],
            "referrer_user_id": self.uid[ref] if ref >= 0 else None,
            "kyc_level": int(self.kyc_level[i]),
            "email": me.email,
            "phone": me.phone,
            "device_id": device.device_id,
            "signup_ip": ip.ip,
            "updated_at": iso(updated_sec, offset),
        }

    def registered_by(self, day: int) -> int:
        """Number of users registered on or before ``day`` (they are sorted)."""
        return int(np.searchsorted(self.reg_day, day, side="right"))


def channel_weights(scenario: Scenario, rng: np.random.Generator) -> np.ndarray:
    """Registration share per (day, channel): paid channels run in two-week flights."""
    days = np.arange(scenario.days)
    w = np.tile(np.array([CHANNEL_SHARE[c] for c in CHANNELS]), (scenario.days, 1))
    for c in PAID_CHANNELS:
        k = CHANNELS.index(c)
        phase = rng.uniform(0, 2 * np.pi)
        w[:, k] *= 1 + 0.5 * np.sin(2 * np.pi * days / 14 + phase)
    return w / w.sum(axis=1, keepdims=True)


def _registration_seconds(n: int, scenario: Scenario, rng: np.random.Generator) -> np.ndarray:
    days = np.arange(scenario.days)
    weekday = np.array([scenario.date_of(int(d)).weekday() for d in days])
    w = (1 + 0.6 * days / max(scenario.days, 1)) * np.where(weekday >= 5, 0.8, 1.0)
    w *= np.exp(rng.normal(0, 0.15, size=scenario.days))
    w[:3] *= 4  # launch buzz
    counts = rng.multinomial(n - MARKET_MAKERS, w / w.sum())
    day = np.repeat(days, counts)
    # evening-heavy diurnal shape
    second = (rng.beta(2.2, 1.6, size=day.size) * (DAY - 1)).astype(np.int64)
    regular = np.sort(scenario.epoch(0) + day * DAY + second)
    market_makers = scenario.epoch(0) + np.arange(1, MARKET_MAKERS + 1)
    return np.concatenate([market_makers, regular]).astype(np.int64)


def build_population(n: int, scenario: Scenario, rng: np.random.Generator) -> Population:
    reg_sec = _registration_seconds(n, scenario, rng)
    reg_day = ((reg_sec - scenario.epoch(0)) // DAY).astype(np.int32)

    cum = np.cumsum(channel_weights(scenario, rng)[reg_day], axis=1)
    channel = (rng.random(n)[:, None] > cum).sum(axis=1).clip(0, len(CHANNELS) - 1)
    channel = channel.astype(np.int8)
    cw = np.array(COUNTRY_WEIGHTS, float)
    country = rng.choice(len(COUNTRIES), size=n, p=cw / cw.sum()).astype(np.int8)
    mm = np.zeros(n, bool)
    mm[:MARKET_MAKERS] = True
    channel[mm] = CHANNELS.index("organic")
    country[mm] = COUNTRIES.index("SG")

    # scripted roles: one referral ring, a few wash traders, a few pre-KYC traders
    ring_referrer = MARKET_MAKERS
    lo = np.searchsorted(reg_day, scenario.at(0.1))
    hi = max(np.searchsorted(reg_day, scenario.at(0.35), side="right"), lo + RING_REFEREES)
    pool = np.arange(max(lo, ring_referrer + 1), min(hi, n))
    ring = np.sort(rng.choice(pool, size=RING_REFEREES, replace=False))
    is_ring = np.zeros(n, bool)
    is_ring[ring] = True
    is_ring[ring_referrer] = True
    early = np.arange(ring_referrer + 1, max(int(n * 0.4), ring_referrer + 20))
    early = early[~is_ring[early]]
    picks = rng.choice(early, size=max(2, n // 1000) + max(2, n // 500), replace=False)
    is_wash = np.zeros(n, bool)
    is_wash[picks[: max(2, n // 1000)]] = True
    forced_pre_kyc = np.zeros(n, bool)
    forced_pre_kyc[picks[max(2, n // 1000) :]] = True
    forced = mm | is_ring | is_wash | forced_pre_kyc
    pre_kyc = forced_pre_kyc | ((rng.random(n) < 0.02) & ~forced)
    is_whale = (rng.random(n) < 0.025) & ~mm & ~is_ring

    referrer = np.full(n, -1, np.int32)
    referral = CHANNELS.index("referral")
    influencers = np.arange(MARKET_MAKERS, n, 50)
    for i in np.flatnonzero(channel == referral).tolist():
        if i <= MARKET_MAKERS + 1:
            channel[i] = CHANNELS.index("organic")
            continue
        cand = influencers[influencers < i]
        if cand.size and rng.random() < 0.4:
            referrer[i] = cand[rng.integers(cand.size)]
        else:
            referrer[i] = rng.integers(MARKET_MAKERS, i)
    channel[ring] = referral
    referrer[ring] = ring_referrer
    referrer[ring_referrer] = -1
    channel[ring_referrer] = CHANNELS.index("organic")

    device_owner = np.arange(n, dtype=np.int32)
    ip_owner = np.arange(n, dtype=np.int32)
    # households behind one router
    shared = np.flatnonzero((rng.random(n) < 0.015) & ~forced)
    shared = shared[shared > MARKET_MAKERS + 1]
    ip_owner[shared] = [rng.integers(MARKET_MAKERS + 1, i) for i in shared.tolist()]
    device_owner[ring[[0, 2]]] = ring_referrer
    ip_owner[ring[[1, 2, 3]]] = ring_referrer

    p_day = rng.uniform(0.2, 0.85, n)
    p_day[is_whale | is_wash | is_ring] = 0.9
    lam = rng.lognormal(np.log(4.5), 0.8, n)
    lam[is_whale] *= 3
    size_frac = rng.lognormal(np.log(0.05), 0.5, n)
    home_line = rng.choice(3, size=n, p=[0.62, 0.28, 0.10]).astype(np.int8)
    churn = np.array([CHURN_HAZARD[c] for c in CHANNELS])[channel] * rng.lognormal(0, 0.5, n)
    churn[is_whale] *= 0.5
    churn[forced] = 0.0
    wealth_prone = rng.random(n) < np.where(is_whale, 0.6, 0.25)
    return Population(
        n=n,
        reg_sec=reg_sec,
        reg_day=reg_day,
        channel=channel,
        country=country,
        referrer=referrer,
        device_owner=device_owner,
        ip_owner=ip_owner,
        is_mm=mm,
        is_whale=is_whale,
        is_wash=is_wash,
        is_ring=is_ring,
        pre_kyc=pre_kyc,
        forced=forced,
        p_day=p_day,
        lam=lam,
        size_frac=size_frac,
        home_line=home_line,
        churn=churn,
        wealth_prone=wealth_prone,
        ring_referrer=ring_referrer,
        uid=[user_id(i) for i in range(n)],
        seed=scenario.seed,
    )
