"""The day loop that ties the parts together and writes the landing zone."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from exops.contract import write_landing_clock
from exops.simulate.accounts import Accounts
from exops.simulate.activity import Activity
from exops.simulate.campaigns import Campaigns
from exops.simulate.catalogue import Catalogue
from exops.simulate.context import Context
from exops.simulate.feedback import Feedback
from exops.simulate.funnel import Funnel
from exops.simulate.marketing import spend_rows
from exops.simulate.population import MARKET_MAKERS, RING_REFEREES, build_population
from exops.simulate.prices import Prices
from exops.simulate.scenario import Scenario
from exops.simulate.trading import Trading
from exops.simulate.writer import LandingWriter

MIN_USERS = MARKET_MAKERS + RING_REFEREES + 40


def simulate(
    out: Path,
    users: int,
    days: int,
    start: date,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Write ``days`` days of landing-zone deliveries for ``users`` users under ``out``.

    The same arguments always give byte-identical files. Returns rows written per
    ``"source/entity"``.
    """
    if users < MIN_USERS:
        raise ValueError(f"users must be at least {MIN_USERS} (got {users})")
    if days < 1:
        raise ValueError(f"days must be at least 1 (got {days})")
    scenario = Scenario(start=start, days=days, seed=seed)
    rng = np.random.default_rng([seed, 1])
    dates = [scenario.date_of(d).isoformat() for d in range(days)]
    ctx = Context(
        scenario=scenario,
        pop=build_population(users, scenario, np.random.default_rng([seed, 2])),
        prices=Prices(scenario, np.random.default_rng([seed, 3])),
        catalogue=Catalogue(scenario),
        writer=LandingWriter(Path(out), dates, random.Random(seed + 4)),
        rnd=random.Random(seed),
        rng=rng,
    )
    accounts = Accounts(ctx)
    campaigns = Campaigns(ctx)
    funnel = Funnel(ctx, accounts, campaigns)
    activity = Activity(ctx, accounts)
    trading = Trading(ctx)
    feedback = Feedback(ctx)
    spend_rng = np.random.default_rng([seed, 5])
    for day in range(days):
        pop, w = ctx.pop, ctx.writer
        w.add("exchange/products", day, ctx.catalogue.snapshot_rows(day))
        w.add("exchange/product_events", day, ctx.catalogue.event_rows(day))
        campaigns.emit_definitions(day)
        funnel.run_day(day)
        activity.run_day(day)
        mult, focus, discount, wealth_boost = campaigns.effects(day)
        accounts.daily(day, wealth_boost)
        campaigns.enroll_daily(day, pop.cash)
        totals = trading.run_day(day, mult, focus, discount)
        campaigns.after_trades(day, totals.volume, totals.fees)
        registrations = pop.registered_by(day) - int(np.searchsorted(pop.reg_day, day))
        feedback.run_day(day, registrations)
        w.add("exchange/asset_prices", day, ctx.prices.rows(day, dates[day]))
        w.add("crm/marketing_spend", day, spend_rows(pop, day, dates[day], spend_rng))
        accounts.end_of_day(day, dates[day])
        w.flush(day)
        if progress is not None:
            progress(day + 1, days)
    # the landing zone's own clock, the day after its last partition: `exops run` and the
    # benchmark ingest with it, so simulated history is never held as future
    write_landing_clock(Path(out), scenario.date_of(days - 1) + timedelta(days=1))
    return dict(ctx.writer.counts)
