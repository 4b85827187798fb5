"""Customer feedback: support tickets (a change feed as they progress) and survey answers.

Both get worse around the incident day and the volume spike.
"""

from __future__ import annotations

import heapq

import numpy as np

from exops.contract import PRODUCT_LINES, TICKET_CATEGORIES, TICKET_CHANNELS, TICKET_PRIORITIES
from exops.simulate.catalogue import PRODUCTS
from exops.simulate.context import Context
from exops.simulate.fake import (
    SURVEY_COMMENTS_BAD,
    SURVEY_COMMENTS_GOOD,
    TICKET_TEXTS,
    with_contact,
)
from exops.simulate.formats import DAY, iso

CHANNEL_WEIGHTS = (0.45, 0.3, 0.15, 0.1)
CATEGORY_WEIGHTS = (0.22, 0.18, 0.15, 0.08, 0.1, 0.07, 0.1, 0.1)
INCIDENT_CATEGORY_WEIGHTS = (0.15, 0.35, 0.03, 0.05, 0.3, 0.02, 0.05, 0.05)
PRIORITY_WEIGHTS = (0.2, 0.55, 0.2, 0.05)
INCIDENT_PRIORITY_WEIGHTS = (0.05, 0.35, 0.4, 0.2)
FIRST_RESPONSE_MINUTES = {"chat": 4, "phone": 2, "email": 240, "community": 600}
CSAT_GOOD = (0.04, 0.06, 0.12, 0.33, 0.45)
CSAT_BAD = (0.3, 0.25, 0.2, 0.15, 0.1)


def _weights(w: tuple[float, ...]) -> np.ndarray:
    a = np.array(w, float)
    return a / a.sum()


class Feedback:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._updates: list[tuple[int, int, dict]] = []  # (updated_at, seq, full record)
        self._seq = 0
        s = ctx.scenario
        self._bad_days = {s.incident_day + k: 1.0 - 0.2 * k for k in range(4)}
        if s.spike_day is not None:
            self._bad_days.setdefault(s.spike_day, 0.6)
            self._bad_days.setdefault(s.spike_day + 1, 0.4)

    def mood(self, day: int) -> float:
        """0 = normal, 1 = the worst day of the incident."""
        return self._bad_days.get(day, 0.0)

    def _later(self, sec: int, record: dict) -> None:
        self._seq += 1
        heapq.heappush(self._updates, (sec, self._seq, record))

    def run_day(self, day: int, registrations: int) -> None:
        ctx, pop, rng, rnd = self.ctx, self.ctx.pop, self.ctx.rng, self.ctx.rnd
        n = pop.registered_by(day)
        active = np.flatnonzero(pop.last_trade_day[:n] >= day - 7)
        mood = self.mood(day)
        day0, end = ctx.scenario.epoch(day), ctx.scenario.epoch(day) + DAY
        lam = (2 + 0.006 * active.size + 0.02 * registrations) * (1 + 4 * mood)
        categories = _weights(CATEGORY_WEIGHTS if mood < 0.5 else INCIDENT_CATEGORY_WEIGHTS)
        priorities = _weights(PRIORITY_WEIGHTS if mood < 0.5 else INCIDENT_PRIORITY_WEIGHTS)
        traded = [p.product_id for p in PRODUCTS if ctx.catalogue.window(PRODUCTS.index(p), day)]
        rows = []
        for _ in range(int(rng.poisson(lam))):
            created = day0 + int(rng.integers(DAY))
            user = None
            if n and rnd.random() > 0.08:
                pool = active if active.size and rnd.random() < 0.7 else np.arange(n)
                user = int(pool[rng.integers(pool.size)])
                if pop.reg_sec[user] > created:
                    user = None
            channel = TICKET_CHANNELS[rng.choice(4, p=_weights(CHANNEL_WEIGHTS))]
            category = TICKET_CATEGORIES[rng.choice(8, p=categories)]
            subject, body = rnd.choice(TICKET_TEXTS[category])
            product = rnd.choice(traded) if traded and category in ("trading", "fees") else None
            body = body.format(
                amount=rnd.choice((50, 200, 500, 1000, 2500)),
                asset=rnd.choice(("USDT", "BTC", "ETH", "EUR")),
                hours=rnd.randint(2, 48),
                product=product or "BTC-USDT",
            )
            person = pop.person(user) if user is not None else pop.stranger(rnd.randrange(10**6))
            off = ctx.offset()
            record = {
                "ticket_id": ctx.ids.new("TK"),
                "user_id": pop.uid[user] if user is not None else None,
                "channel": channel,
                "category": category,
                "product_id": product,
                "priority": TICKET_PRIORITIES[rng.choice(4, p=priorities)],
                "created_at": iso(created, off),
                "first_response_at": None,
                "resolved_at": None,
                "csat": None,
                "subject": subject,
                "body": with_contact(rnd, body, person),
                "updated_at": iso(created, off),
            }
            rows.append(record)
            self._schedule_progress(record, created, channel, mood)
        while self._updates and self._updates[0][0] < end:
            sec, _, record = heapq.heappop(self._updates)
            rows.append(record)
        ctx.writer.add("feedback/tickets", day, sorted(rows, key=lambda r: r["ticket_id"]))
        self._surveys(day, active, mood)

    def _schedule_progress(self, record: dict, created: int, channel: str, mood: float) -> None:
        rng, rnd, off = self.ctx.rng, self.ctx.rnd, self.ctx.offset()
        if rnd.random() < 0.05:
            return  # never answered
        slow = 1 + 5 * mood
        minutes = FIRST_RESPONSE_MINUTES[channel] * slow * rng.lognormal(0, 0.8)
        first = created + max(30, int(minutes * 60))
        answered = dict(record, first_response_at=iso(first, off), updated_at=iso(first, off))
        self._later(first, answered)
        if rnd.random() < 0.1:
            return  # still open
        resolved = first + max(60, int(rng.lognormal(np.log(6 * 3600 * (1 + 2 * mood)), 1.2)))
        done = dict(answered, resolved_at=iso(resolved, off), updated_at=iso(resolved, off))
        if rnd.random() < 0.6:
            fast = resolved - created <= DAY
            csat_p = _weights(CSAT_GOOD if fast and mood < 0.5 else CSAT_BAD)
            rated = resolved + int(rng.integers(60, 4 * 3600))
            done.update(csat=int(rng.choice(5, p=csat_p)) + 1, updated_at=iso(rated, off))
            self._later(rated, done)
        else:
            self._later(resolved, done)

    def _after(self, day0: int, user: int | None) -> int:
        """A second of the day, not before the user registered."""
        lo = day0 if user is None else max(day0, int(self.ctx.pop.reg_sec[user]))
        return int(self.ctx.rng.integers(lo, day0 + DAY))

    def _surveys(self, day: int, active: np.ndarray, mood: float) -> None:
        ctx, pop, rng, rnd = self.ctx, self.ctx.pop, self.ctx.rng, self.ctx.rnd
        rows = []
        day0 = ctx.scenario.epoch(day)
        for survey, base in (
            ("nps", 1 + 0.003 * active.size),
            ("csat", 0.5 + 0.0015 * active.size),
        ):
            for _ in range(int(rng.poisson(base * (1 + mood)))):
                user = int(active[rng.integers(active.size)]) if active.size else None
                if user is not None and rnd.random() < 0.05:
                    user = None
                bad = rnd.random() < 0.25 + 0.45 * mood
                if survey == "nps":
                    score = rnd.randint(0, 6) if bad else rnd.choice((7, 8, 8, 9, 9, 10, 10, 10))
                else:
                    score = rnd.randint(1, 3) if bad else rnd.choice((4, 4, 5, 5, 5))
                comment = None
                if rnd.random() < 0.35:
                    text = rnd.choice(SURVEY_COMMENTS_BAD if bad else SURVEY_COMMENTS_GOOD)
                    who = (
                        pop.person(user) if user is not None else pop.stranger(rnd.randrange(10**6))
                    )
                    comment = with_contact(rnd, text, who)
                line = None
                if user is not None and rnd.random() < 0.7:
                    wealth = pop.wealth_product[user] >= 0 and rnd.random() < 0.3
                    line = "wealth" if wealth else PRODUCT_LINES[pop.home_line[user]]
                rows.append(
                    {
                        "response_id": ctx.ids.new("S"),
                        "user_id": pop.uid[user] if user is not None else None,
                        "survey": survey,
                        "score": score,
                        "product_line": line,
                        "comment": comment,
                        "submitted_at": iso(self._after(day0, user), ctx.offset()),
                    }
                )
        ctx.writer.add("feedback/survey_responses", day, rows)
