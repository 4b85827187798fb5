"""Independent reference implementation of the published marts (shared/spec/KPIS.md).

Written from the specification only (KPIS.md, SOURCES.md), never from the dbt SQL: it reads
the raw tables (``raw.<source>_<entity>``), applies the staging rules of SOURCES.md
(deduplication, latest state, product attributes) and computes every mart with pandas.

Usage::

    ctx = load_context(url)            # or Context(load_raw(url))
    df = MARTS["exchange_daily_kpis"](ctx)

Each mart function returns a DataFrame with the spec's columns; dates are ``datetime.date``,
money and rates are floats, counts are ints, nulls are ``None``/NaN. ``KEYS`` gives each
mart's grain key and ``compare`` checks a dbt mart against the reference cell by cell.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pandas as pd
import psycopg

from exops.contract import CHANNELS, ENTITIES, TICKET_CATEGORIES, TICKET_CHANNELS, TIERS

# dbt vars (KPIS.md defaults)
VARS = {
    "hnw_equity_usd": 100_000.0,
    "hnw_volume_30d_usd": 1_000_000.0,
    "new_user_days": 30,
    "active_window_days": 30,
    "cold_start_days": 30,
    "iteration_days": 14,
}

META = ["_dt", "_file", "_line"]
DAY = pd.Timedelta(days=1)


# ----------------------------------------------------------------------------- loading


def load_raw(url: str) -> dict[str, pd.DataFrame]:
    """Every raw table, whole, with typed columns (decimals as float, timestamps UTC)."""
    out: dict[str, pd.DataFrame] = {}
    with psycopg.connect(url) as conn:
        conn.execute("set time zone 'UTC'")
        for e in ENTITIES:
            cur = conn.execute(f"select * from {e.qualified_table}")
            cols = [d.name for d in cur.description]
            df = pd.DataFrame(cur.fetchall(), columns=cols, dtype=object)
            for c in e.columns:
                if c.type == "decimal":
                    df[c.name] = pd.to_numeric(df[c.name].map(_num), errors="raise").astype(float)
                elif c.type == "timestamp":
                    df[c.name] = pd.to_datetime(df[c.name], utc=True)
                elif c.type == "date":
                    df[c.name] = pd.to_datetime(df[c.name])
                elif c.type == "integer":
                    df[c.name] = df[c.name].astype("Int64")
            df["_dt"] = pd.to_datetime(df["_dt"])
            df["_line"] = df["_line"].astype("int64")
            out[e.table] = df
    return out


def _num(v):
    if v is None:
        return np.nan
    return float(v) if isinstance(v, Decimal) else v


def _latest(df: pd.DataFrame, key: list[str], order: list[str]) -> pd.DataFrame:
    """One row per key: the last by ``order`` (then _dt, _file, _line)."""
    if df.empty:
        return df.copy()
    s = df.sort_values(order + META, kind="mergesort")
    return s.drop_duplicates(key, keep="last").reset_index(drop=True)


def _day(ts: pd.Series) -> pd.Series:
    """UTC calendar day of a tz-aware timestamp, as a naive midnight Timestamp."""
    return ts.dt.tz_convert("UTC").dt.tz_localize(None).dt.floor("D")


def _monday(d: pd.Series) -> pd.Series:
    return d - pd.to_timedelta(d.dt.day_of_week, unit="D")


def _month(d: pd.Series) -> pd.Series:
    return d.dt.to_period("M").dt.to_timestamp()


def _dates(s: pd.Series) -> pd.Series:
    return s.map(lambda x: None if pd.isna(x) else pd.Timestamp(x).date())


def _ratio(num, den):
    num = pd.Series(num, dtype=float)
    den = pd.Series(den, dtype=float)
    return (num / den).where(den != 0)


# ----------------------------------------------------------------------------- staging


@dataclass(repr=False)
class Context:
    raw: dict[str, pd.DataFrame]
    vars: dict = field(default_factory=lambda: dict(VARS))

    def __post_init__(self) -> None:
        r = self.raw
        dts = pd.concat([df["_dt"] for df in r.values() if not df.empty])
        self.first: pd.Timestamp = dts.min()
        self.asof: pd.Timestamp = dts.max()
        self.days = pd.date_range(self.first, self.asof, freq="D")

        # change feeds: greatest updated_at, then dt, file, line
        users = _latest(r["crm_users"], ["user_id"], ["updated_at"])
        users["reg_date"] = _day(users["registered_at"])
        self.users = users.set_index("user_id", drop=False).rename_axis(None)
        self.campaigns = _latest(r["crm_campaigns"], ["campaign_id"], ["updated_at"])
        self.tickets = _latest(r["feedback_tickets"], ["ticket_id"], ["updated_at"])
        # append-only: later dt, file, line
        self.product_events = _latest(r["exchange_product_events"], ["event_id"], [])
        trades = _latest(r["exchange_trades"], ["trade_id"], [])
        transfers = _latest(r["exchange_transfers"], ["transfer_id"], [])
        wealth = _latest(r["exchange_wealth_events"], ["event_id"], [])
        self.kyc = _latest(r["crm_kyc_events"], ["event_id"], [])
        self.enrollments = _latest(r["crm_campaign_enrollments"], ["campaign_id", "user_id"], [])
        self.rewards = _latest(r["crm_rewards"], ["reward_id"], [])
        self.surveys = _latest(r["feedback_survey_responses"], ["response_id"], [])
        # daily entities
        prices = _latest(r["exchange_asset_prices"], ["asset", "price_date"], [])
        self.balances = _latest(r["exchange_account_balances"], ["user_id", "snapshot_date"], [])
        self.spend = _latest(r["crm_marketing_spend"], ["spend_date", "channel"], [])
        # products: latest snapshot containing the product
        self.products = (
            _latest(r["exchange_products"], ["product_id"], [])
            .set_index("product_id", drop=False)
            .rename_axis(None)
        )
        self.price = {
            (a, d): p
            for a, d, p in zip(
                prices["asset"], prices["price_date"], prices["usd_price"], strict=True
            )
        }

        # trades priced
        trades["date"] = _day(trades["executed_at"])
        trades["quote_asset"] = trades["product_id"].map(self.products["quote_asset"])
        trades["product_line"] = trades["product_id"].map(self.products["product_line"])
        px = self._prices(trades["quote_asset"], trades["date"], "trades")
        trades["volume_usd"] = trades["quote_amount"] * px
        trades["maker_fee_usd"] = trades["maker_fee"] * px
        trades["taker_fee_usd"] = trades["taker_fee"] * px
        trades["fees_usd"] = trades["maker_fee_usd"] + trades["taker_fee_usd"]
        self.trades = trades

        # one row per (trade, user): a self-trade adds its volume once and both fees
        base = ["trade_id", "product_id", "product_line", "executed_at", "date", "volume_usd"]
        m = trades[[*base, "maker_user_id", "maker_fee_usd"]].rename(
            columns={"maker_user_id": "user_id", "maker_fee_usd": "fee_usd"}
        )
        t = trades[[*base, "taker_user_id", "taker_fee_usd"]].rename(
            columns={"taker_user_id": "user_id", "taker_fee_usd": "fee_usd"}
        )
        ut = pd.concat([m, t], ignore_index=True)
        self.user_trades = ut.groupby(["trade_id", "user_id"], as_index=False, sort=False).agg(
            product_id=("product_id", "first"),
            product_line=("product_line", "first"),
            executed_at=("executed_at", "first"),
            date=("date", "first"),
            volume_usd=("volume_usd", "first"),
            fee_usd=("fee_usd", "sum"),
        )

        transfers["date"] = _day(transfers["created_at"])
        transfers["usd"] = transfers["amount"] * self._prices(
            transfers["asset"], transfers["date"], "transfers"
        )
        self.transfers = transfers
        wealth["date"] = _day(wealth["event_at"])
        wealth["usd"] = wealth["amount"] * self._prices(wealth["asset"], wealth["date"], "wealth")
        self.wealth = wealth

        # active (user, day)
        self.active = pd.concat(
            [self.user_trades[["user_id", "date"]], wealth[["user_id", "date"]]]
        ).drop_duplicates()
        # first trade per user (either side, all products)
        self.first_trade = self.user_trades.groupby("user_id")["executed_at"].min()

        # per user per day: volume, fees, completed net deposits
        self.user_day = (
            self.user_trades.groupby(["user_id", "date"])[["volume_usd", "fee_usd"]]
            .sum()
            .rename(columns={"fee_usd": "fees_usd"})
        )
        done = transfers[transfers["status"] == "completed"]
        sign = np.where(done["direction"] == "deposit", 1.0, -1.0)
        self.net_dep = done.assign(net=done["usd"] * sign).groupby(["user_id", "date"])["net"].sum()
        self._tiers: dict[pd.Timestamp, pd.Series] = {}

    def _prices(self, assets: pd.Series, dates: pd.Series, what: str) -> pd.Series:
        vals = []
        for a, d in zip(assets, dates, strict=True):
            p = self.price.get((a, d))
            if p is None:
                raise KeyError(f"missing usd_price for {a} on {d.date()} ({what})")
            vals.append(p)
        return pd.Series(vals, index=assets.index, dtype=float)

    # ------------------------------------------------------------------ user tier

    def tiers_on(self, d: pd.Timestamp) -> pd.Series:
        """user_id -> tier on day d, for every user registered on or before d."""
        d = pd.Timestamp(d)
        if d in self._tiers:
            return self._tiers[d]
        v = self.vars
        u = self.users[self.users["reg_date"] <= d]
        ids = u.index
        bal = self.balances[self.balances["snapshot_date"] == d].set_index("user_id")["equity_usd"]
        equity = pd.Series(ids.map(bal), index=ids).fillna(0.0)
        lo = d - (v["active_window_days"] - 1) * DAY
        ud = self.user_day.reset_index()
        win = ud[(ud["date"] >= lo) & (ud["date"] <= d)]
        vol30 = win.groupby("user_id")["volume_usd"].sum().reindex(ids).fillna(0.0)
        act = self.active[(self.active["date"] >= lo) & (self.active["date"] <= d)]
        active30 = pd.Series(ids.isin(act["user_id"]), index=ids)
        age = (d - u["reg_date"]).dt.days
        tier = pd.Series("dormant", index=ids, dtype=object)
        tier[active30] = "active"
        tier[age < v["new_user_days"]] = "new"
        hnw = (equity >= v["hnw_equity_usd"]) | (vol30 >= v["hnw_volume_30d_usd"])
        tier[hnw] = "high_net_worth"
        self._tiers[d] = tier
        return tier

    # ------------------------------------------------------------------ lifecycle

    def product_days(self) -> pd.DataFrame:
        """(product_id, date, lifecycle_stage) for every product row."""
        if hasattr(self, "_product_days"):
            return self._product_days
        v = self.vars
        ev = self.product_events.copy()
        ev["date"] = _day(ev["event_at"])
        rows = []
        for pid, g in ev.groupby("product_id"):
            g = g.sort_values(["event_at", "event_id"])
            start = max(g["date"].min(), self.first)
            for d in pd.date_range(start, self.asof, freq="D"):
                upto = g[g["date"] <= d]
                if upto.empty:
                    continue
                last = upto.iloc[-1]
                et, ed = last["event_type"], last["date"]
                if et == "announced":
                    st = "launch_preparation"
                elif et == "listed":
                    st = (
                        "cold_start" if (d - ed).days < v["cold_start_days"] else "daily_operations"
                    )
                elif et == "iteration_released":
                    st = "iteration" if (d - ed).days < v["iteration_days"] else "daily_operations"
                elif et == "delisting_announced":
                    st = "delisting"
                elif et == "delisted":
                    if d > ed:
                        continue
                    st = "delisted"
                else:  # pragma: no cover
                    raise ValueError(et)
                rows.append((pid, d, st))
        self._product_days = pd.DataFrame(rows, columns=["product_id", "date", "lifecycle_stage"])
        return self._product_days


def load_context(url: str) -> Context:
    return Context(load_raw(url))


# ----------------------------------------------------------------------------- marts


def exchange_daily_kpis(ctx: Context) -> pd.DataFrame:
    days = ctx.days
    tr = ctx.trades.groupby("date").agg(
        trade_count=("trade_id", "count"),
        volume_usd=("volume_usd", "sum"),
        fees_usd=("fees_usd", "sum"),
    )
    df = pd.DataFrame(index=days)
    df = df.join(tr)
    df["traders"] = ctx.user_trades.groupby("date")["user_id"].nunique()
    df["active_users"] = ctx.active.groupby("date")["user_id"].nunique()
    act = ctx.active
    wau, mau = [], []
    for d in days:
        wau.append(act[(act["date"] >= d - 6 * DAY) & (act["date"] <= d)]["user_id"].nunique())
        mau.append(act[(act["date"] >= d - 27 * DAY) & (act["date"] <= d)]["user_id"].nunique())
    df["wau"] = wau
    df["mau"] = mau
    df["registrations"] = ctx.users.groupby("reg_date")["user_id"].count()
    ft = _day(ctx.first_trade)
    df["new_traders"] = ft.groupby(ft).count()
    done = ctx.transfers[ctx.transfers["status"] == "completed"]
    df["deposits_usd"] = done[done["direction"] == "deposit"].groupby("date")["usd"].sum()
    df["withdrawals_usd"] = done[done["direction"] == "withdrawal"].groupby("date")["usd"].sum()
    df = df.fillna(0)
    df["stickiness"] = _ratio(df["active_users"].values, df["mau"].values).values
    df["activity_date"] = df.index
    cols = [
        "activity_date",
        "trade_count",
        "volume_usd",
        "fees_usd",
        "traders",
        "active_users",
        "wau",
        "mau",
        "stickiness",
        "registrations",
        "new_traders",
        "deposits_usd",
        "withdrawals_usd",
    ]
    return _finish(df[cols], ["activity_date"])


def product_daily_kpis(ctx: Context) -> pd.DataFrame:
    pdays = ctx.product_days().copy()
    key = ["product_id", "date"]
    t = ctx.trades.groupby(key).agg(
        trade_count=("trade_id", "count"),
        volume_usd=("volume_usd", "sum"),
        fees_usd=("fees_usd", "sum"),
    )
    ut = ctx.user_trades
    traders = ut.groupby(key)["user_id"].nunique().rename("traders")
    first = ut.groupby(["product_id", "user_id"])["date"].min().reset_index()
    new = first.groupby(key)["user_id"].count().rename("new_traders")
    w = ctx.wealth
    sub = w[w["event_type"] == "subscribe"].groupby(key)["usd"].sum().rename("subscribe_usd")
    red = w[w["event_type"] == "redeem"].groupby(key)["usd"].sum().rename("redeem_usd")
    subs = w[w["event_type"] == "subscribe"].groupby(key)["user_id"].nunique().rename("subscribers")
    df = pdays.set_index(key).join([t, traders, new, sub, red, subs]).reset_index()
    num = [
        "trade_count",
        "volume_usd",
        "fees_usd",
        "traders",
        "new_traders",
        "subscribe_usd",
        "redeem_usd",
        "subscribers",
    ]
    df[num] = df[num].fillna(0)
    df["product_line"] = df["product_id"].map(ctx.products["product_line"])
    df = df.rename(columns={"date": "activity_date"})
    cols = ["product_id", "product_line", "activity_date", "lifecycle_stage", *num]
    return _finish(df[cols], ["product_id", "activity_date"])


def product_stage_kpis(ctx: Context) -> pd.DataFrame:
    pdk = product_daily_kpis(ctx)
    pdk["activity_date"] = pd.to_datetime(pdk["activity_date"])
    pdk = pdk.sort_values(["product_id", "activity_date"])
    rows = []
    for pid, g in pdk.groupby("product_id"):
        g = g.reset_index(drop=True)
        brk = (g["lifecycle_stage"] != g["lifecycle_stage"].shift()) | (
            g["activity_date"] - g["activity_date"].shift() != DAY
        )
        run = brk.cumsum()
        for _, r in g.groupby(run):
            n = len(r)
            end = r["activity_date"].iloc[-1]
            rows.append(
                {
                    "product_id": pid,
                    "product_line": r["product_line"].iloc[0],
                    "lifecycle_stage": r["lifecycle_stage"].iloc[0],
                    "stage_start_date": r["activity_date"].iloc[0],
                    "stage_end_date": end,
                    "days_in_stage": n,
                    "volume_usd": r["volume_usd"].sum(),
                    "avg_daily_volume_usd": r["volume_usd"].sum() / n,
                    "avg_daily_traders": r["traders"].sum() / n,
                    "new_traders": int(r["new_traders"].sum()),
                    "fees_usd": r["fees_usd"].sum(),
                    "is_current": bool(r["activity_date"].iloc[0] <= ctx.asof <= end),
                }
            )
    return _finish(pd.DataFrame(rows), KEYS["product_stage_kpis"])


def _tier_frame(ctx: Context, days) -> pd.DataFrame:
    parts = []
    for d in days:
        t = ctx.tiers_on(d)
        parts.append(pd.DataFrame({"user_id": t.index, "date": d, "tier": t.values}))
    return pd.concat(parts, ignore_index=True)


def user_tier_daily(ctx: Context) -> pd.DataFrame:
    tf = _tier_frame(ctx, ctx.days)
    act = ctx.active.assign(is_active=1).set_index(["user_id", "date"])["is_active"]
    tf = tf.set_index(["user_id", "date"])
    tf = tf.join(act).join(ctx.user_day).join(ctx.net_dep.rename("net_deposits_usd"))
    tf = tf.fillna({"is_active": 0, "volume_usd": 0, "fees_usd": 0, "net_deposits_usd": 0})
    g = (
        tf.reset_index()
        .groupby(["date", "tier"])
        .agg(
            users=("user_id", "count"),
            active_users=("is_active", "sum"),
            volume_usd=("volume_usd", "sum"),
            fees_usd=("fees_usd", "sum"),
            net_deposits_usd=("net_deposits_usd", "sum"),
        )
    )
    full = pd.MultiIndex.from_product([ctx.days, list(TIERS)], names=["date", "tier"])
    df = g.reindex(full).fillna(0).reset_index().rename(columns={"date": "activity_date"})
    cols = [
        "activity_date",
        "tier",
        "users",
        "active_users",
        "volume_usd",
        "fees_usd",
        "net_deposits_usd",
    ]
    return _finish(df[cols], ["activity_date", "tier"])


def user_tier_transitions(ctx: Context) -> pd.DataFrame:
    rows = []
    for d in ctx.days:
        prev = ctx.tiers_on(d - DAY)
        cur = ctx.tiers_on(d).reindex(prev.index)
        ch = pd.DataFrame({"from_tier": prev, "to_tier": cur})
        ch = ch[ch["from_tier"] != ch["to_tier"]]
        for (f, t), n in ch.groupby(["from_tier", "to_tier"]).size().items():
            rows.append({"activity_date": d, "from_tier": f, "to_tier": t, "users": n})
    df = pd.DataFrame(rows, columns=["activity_date", "from_tier", "to_tier", "users"])
    return _finish(df, KEYS["user_tier_transitions"])


def retention_cohorts(ctx: Context) -> pd.DataFrame:
    ft = _day(ctx.first_trade)
    coh = pd.DataFrame({"user_id": ft.index, "cohort_week": _monday(ft).values})
    coh["channel"] = coh["user_id"].map(ctx.users["acquisition_channel"])
    tdays = ctx.user_trades[["user_id", "date"]].drop_duplicates()
    rows = []
    groups = [("all", coh)] + [(c, coh[coh["channel"] == c]) for c in CHANNELS]
    for ch, g in groups:
        for cw, gg in g.groupby("cohort_week"):
            members = set(gg["user_id"])
            for k in range(13):
                ws = cw + 7 * k * DAY
                if ws + 6 * DAY > ctx.asof:
                    break
                inwk = tdays[(tdays["date"] >= ws) & (tdays["date"] <= ws + 6 * DAY)]
                ret = len(members & set(inwk["user_id"]))
                rows.append(
                    {
                        "cohort_week": cw,
                        "acquisition_channel": ch,
                        "week_number": k,
                        "cohort_users": len(members),
                        "retained_users": ret,
                        "retention_rate": ret / len(members),
                    }
                )
    cols = [
        "cohort_week",
        "acquisition_channel",
        "week_number",
        "cohort_users",
        "retained_users",
        "retention_rate",
    ]
    return _finish(pd.DataFrame(rows, columns=cols), KEYS["retention_cohorts"])


def _first_times(ctx: Context) -> pd.DataFrame:
    u = ctx.users[["user_id", "registered_at", "reg_date", "acquisition_channel"]].copy()
    kyc = ctx.kyc[ctx.kyc["status"] == "approved"].groupby("user_id")["event_at"].min()
    tr = ctx.transfers
    dep = tr[(tr["direction"] == "deposit") & (tr["status"] == "completed")]
    dep = dep.groupby("user_id")["created_at"].min()
    u["kyc_at"] = u["user_id"].map(kyc)
    u["dep_at"] = u["user_id"].map(dep)
    u["trade_at"] = u["user_id"].map(ctx.first_trade)
    return u


def acquisition_funnel(ctx: Context) -> pd.DataFrame:
    u = _first_times(ctx)
    win = pd.Timedelta(hours=168)
    for step in ("kyc", "dep", "trade"):
        delta = u[f"{step}_at"] - u["registered_at"]
        u[f"{step}_ok"] = (delta >= pd.Timedelta(0)) & (delta <= win)
    u["hours"] = ((u["trade_at"] - u["registered_at"]).dt.total_seconds() / 3600).where(
        u["trade_ok"]
    )
    g = u.groupby(["reg_date", "acquisition_channel"]).agg(
        registered_users=("user_id", "count"),
        kyc_approved_users=("kyc_ok", "sum"),
        deposited_users=("dep_ok", "sum"),
        traded_users=("trade_ok", "sum"),
        median_hours_to_first_trade=("hours", "median"),
    )
    full = pd.MultiIndex.from_product(
        [ctx.days, list(CHANNELS)], names=["reg_date", "acquisition_channel"]
    )
    df = g.reindex(full).reset_index().rename(columns={"reg_date": "registration_date"})
    cnt = ["registered_users", "kyc_approved_users", "deposited_users", "traded_users"]
    df[cnt] = df[cnt].fillna(0)
    df["kyc_rate"] = _ratio(df["kyc_approved_users"], df["registered_users"])
    df["deposit_rate"] = _ratio(df["deposited_users"], df["registered_users"])
    df["trade_rate"] = _ratio(df["traded_users"], df["registered_users"])
    df["is_complete"] = df["registration_date"] <= ctx.asof - 7 * DAY
    cols = [
        "registration_date",
        "acquisition_channel",
        *cnt,
        "kyc_rate",
        "deposit_rate",
        "trade_rate",
        "median_hours_to_first_trade",
        "is_complete",
    ]
    return _finish(df[cols], KEYS["acquisition_funnel"])


def channel_performance(ctx: Context) -> pd.DataFrame:
    months = pd.date_range(ctx.first.to_period("M").to_timestamp(), ctx.asof, freq="MS")
    sp = ctx.spend.assign(month=_month(ctx.spend["spend_date"]))
    spend = sp.groupby(["month", "channel"])["spend_usd"].sum()
    u = ctx.users.assign(month=_month(ctx.users["reg_date"]))
    reg = u.groupby(["month", "acquisition_channel"])["user_id"].count()
    ft = _day(ctx.first_trade)
    f = pd.DataFrame({"user_id": ft.index, "month": _month(ft).values})
    f["channel"] = f["user_id"].map(ctx.users["acquisition_channel"])
    new = f.groupby(["month", "channel"])["user_id"].count()
    full = pd.MultiIndex.from_product([months, list(CHANNELS)])
    df = pd.DataFrame(index=full)
    df["spend_usd"] = spend.reindex(full).values
    df["registered_users"] = reg.reindex(full).values
    df["new_traders"] = new.reindex(full).values
    df = df.fillna(0).reset_index(names=["month", "acquisition_channel"])
    df["cac_usd"] = _ratio(df["spend_usd"], df["new_traders"])
    cols = [
        "month",
        "acquisition_channel",
        "spend_usd",
        "registered_users",
        "new_traders",
        "cac_usd",
    ]
    return _finish(df[cols], KEYS["channel_performance"])


def cohort_ltv(ctx: Context) -> pd.DataFrame:
    u = ctx.users.assign(cohort_month=_month(ctx.users["reg_date"]))
    ut = ctx.user_trades.merge(
        u[["user_id", "registered_at", "cohort_month", "acquisition_channel"]], on="user_id"
    )
    ut = ut[ut["executed_at"] >= ut["registered_at"]]
    asof_m = ctx.asof.to_period("M")
    rows = []
    for (cm, ch), g in u.groupby(["cohort_month", "acquisition_channel"]):
        n = len(g)
        fees = ut[(ut["cohort_month"] == cm) & (ut["acquisition_channel"] == ch)]
        k = 0
        while True:
            m = cm.to_period("M") + k
            if m > asof_m:
                break
            month_end = m.to_timestamp(how="end").normalize()
            cut = min(month_end, ctx.asof)
            cum = fees[fees["date"] <= cut]["fee_usd"].sum()
            rows.append(
                {
                    "cohort_month": cm,
                    "acquisition_channel": ch,
                    "months_since_registration": k,
                    "cohort_users": n,
                    "cumulative_fees_usd": cum,
                    "ltv_usd": cum / n,
                    "is_complete": bool(month_end <= ctx.asof),
                }
            )
            k += 1
    cols = [
        "cohort_month",
        "acquisition_channel",
        "months_since_registration",
        "cohort_users",
        "cumulative_fees_usd",
        "ltv_usd",
        "is_complete",
    ]
    return _finish(pd.DataFrame(rows, columns=cols), KEYS["cohort_ltv"])


def _window_total(ut: pd.DataFrame, members: set, lo, hi, col: str) -> float:
    x = ut[ut["user_id"].isin(members) & (ut["date"] >= lo) & (ut["date"] <= hi)]
    return float(x[col].sum())


def _incremental(vals: dict, name: str, p: int, k: int) -> float | None:
    """participants x (delta per participant - delta per control); None without either."""
    if p == 0 or k == 0:
        return None
    dp = (vals[f"p_{name}_dur"] - vals[f"p_{name}_pre"]) / p
    dc = (vals[f"c_{name}_dur"] - vals[f"c_{name}_pre"]) / k
    return p * (dp - dc)


def campaign_performance(ctx: Context) -> pd.DataFrame:
    rows = []
    users = ctx.users
    for _, c in ctx.campaigns.iterrows():
        s = _day(pd.Series([c["start_at"]])).iloc[0]
        end = _day(pd.Series([c["end_at"]])).iloc[0]
        if s > ctx.asof:
            continue
        e = min(end, ctx.asof)
        n = (e - s).days + 1
        pre_lo, pre_hi = s - n * DAY, s - DAY
        enrolled = set(
            ctx.enrollments.loc[ctx.enrollments["campaign_id"] == c["campaign_id"], "user_id"]
        )
        excluded = set(c["excluded_countries"] or [])
        cand = users[
            (users["reg_date"] < s)
            & ~users["user_id"].isin(enrolled)
            & ~users["country"].isin(excluded)
        ]
        if c["target_tier"] != "all":
            tiers = ctx.tiers_on(s - DAY)
            cand = cand[cand["user_id"].map(tiers) == c["target_tier"]]
        controls = set(cand["user_id"])
        ut = ctx.user_trades
        if pd.notna(c["product_line"]) and c["product_line"] is not None:
            ut = ut[ut["product_line"] == c["product_line"]]

        p, k = len(enrolled), len(controls)
        vals = {}
        for col, name in (("volume_usd", "volume"), ("fee_usd", "fees")):
            vals[f"p_{name}_pre"] = _window_total(ut, enrolled, pre_lo, pre_hi, col)
            vals[f"p_{name}_dur"] = _window_total(ut, enrolled, s, e, col)
            vals[f"c_{name}_pre"] = _window_total(ut, controls, pre_lo, pre_hi, col)
            vals[f"c_{name}_dur"] = _window_total(ut, controls, s, e, col)

        rw = ctx.rewards
        cost = float(
            rw[(rw["campaign_id"] == c["campaign_id"]) & (_day(rw["paid_at"]) <= ctx.asof)][
                "amount_usd"
            ].sum()
        )
        inc_f = _incremental(vals, "fees", p, k)
        roi = None if (cost == 0 or inc_f is None) else (inc_f - cost) / cost
        rows.append(
            {
                "campaign_id": c["campaign_id"],
                "campaign_type": c["campaign_type"],
                "product_line": c["product_line"] if pd.notna(c["product_line"]) else None,
                "start_date": s,
                "end_date": end,
                "is_complete": bool(end <= ctx.asof),
                "participants": p,
                "controls": k,
                "participant_volume_pre_usd": vals["p_volume_pre"],
                "participant_volume_during_usd": vals["p_volume_dur"],
                "control_volume_pre_usd": vals["c_volume_pre"],
                "control_volume_during_usd": vals["c_volume_dur"],
                "incremental_volume_usd": _incremental(vals, "volume", p, k),
                "incremental_fees_usd": inc_f,
                "cost_usd": cost,
                "roi": roi,
            }
        )
    return _finish(pd.DataFrame(rows), KEYS["campaign_performance"])


def feedback_daily(ctx: Context) -> pd.DataFrame:
    t = ctx.tickets.copy()
    t["created_date"] = _day(t["created_at"])
    t["resolved"] = t["resolved_at"].notna()
    t["within24"] = (t["resolved_at"] - t["created_at"]) <= pd.Timedelta(hours=24)
    t["resp_min"] = (t["first_response_at"] - t["created_at"]).dt.total_seconds() / 60
    t["csat_f"] = t["csat"].astype(float)
    g = t.groupby(["created_date", "category", "channel"]).agg(
        tickets=("ticket_id", "count"),
        resolved_tickets=("resolved", "sum"),
        resolved_within_24h=("within24", "sum"),
        median_first_response_minutes=("resp_min", "median"),
        avg_csat=("csat_f", "mean"),
        csat_responses=("csat_f", "count"),
    )
    full = pd.MultiIndex.from_product(
        [ctx.days, list(TICKET_CATEGORIES), list(TICKET_CHANNELS)],
        names=["created_date", "category", "channel"],
    )
    df = g.reindex(full).reset_index()
    cnt = ["tickets", "resolved_tickets", "resolved_within_24h", "csat_responses"]
    df[cnt] = df[cnt].fillna(0)
    cols = [
        "created_date",
        "category",
        "channel",
        "tickets",
        "resolved_tickets",
        "resolved_within_24h",
        "median_first_response_minutes",
        "avg_csat",
        "csat_responses",
    ]
    return _finish(df[cols], KEYS["feedback_daily"])


def nps_weekly(ctx: Context) -> pd.DataFrame:
    s = ctx.surveys[ctx.surveys["survey"] == "nps"].copy()
    s["week_start"] = _monday(_day(s["submitted_at"]))
    s["score"] = s["score"].astype(int)
    allp = s.assign(product_line="all")
    lined = s[s["product_line"].notna()]
    x = pd.concat([allp, lined], ignore_index=True)
    x["prom"] = x["score"] >= 9
    x["pas"] = (x["score"] >= 7) & (x["score"] <= 8)
    x["det"] = x["score"] <= 6
    g = (
        x.groupby(["week_start", "product_line"])
        .agg(
            responses=("response_id", "count"),
            promoters=("prom", "sum"),
            passives=("pas", "sum"),
            detractors=("det", "sum"),
        )
        .reset_index()
    )
    g["nps"] = 100.0 * (g["promoters"] - g["detractors"]) / g["responses"]
    return _finish(g, KEYS["nps_weekly"])


def _shares(a: pd.Series, b: pd.Series) -> bool:
    return a["device_id"] == b["device_id"] or a["signup_ip"] == b["signup_ip"]


def risk_alerts(ctx: Context) -> pd.DataFrame:
    rows = []
    tr = ctx.trades
    users = ctx.users
    in_range = (tr["date"] >= ctx.first) & (tr["date"] <= ctx.asof)
    tr = tr[in_range]
    # self_trade
    st = tr[tr["maker_user_id"] == tr["taker_user_id"]]
    for (u, d), v in st.groupby(["maker_user_id", "date"])["volume_usd"].sum().items():
        rows.append(("self_trade", d, u, v))
    # linked_account_trade
    ot = tr[tr["maker_user_id"] != tr["taker_user_id"]].copy()
    dev = users["device_id"]
    ip = users["signup_ip"]
    linked = (ot["maker_user_id"].map(dev) == ot["taker_user_id"].map(dev)) | (
        ot["maker_user_id"].map(ip) == ot["taker_user_id"].map(ip)
    )
    ot = ot[linked]
    ot["pair"] = [
        "|".join(sorted((a, b)))
        for a, b in zip(ot["maker_user_id"], ot["taker_user_id"], strict=True)
    ]
    for (p, d), v in ot.groupby(["pair", "date"])["volume_usd"].sum().items():
        rows.append(("linked_account_trade", d, p, v))
    # trade_before_kyc
    kyc = ctx.kyc[ctx.kyc["status"] == "approved"].groupby("user_id")["event_at"].min()
    ut = ctx.user_trades
    ut = ut[(ut["date"] >= ctx.first) & (ut["date"] <= ctx.asof)]
    k = ut["user_id"].map(kyc)
    before = ut[k.isna() | (ut["executed_at"] < k)]
    for (u, d), n in before.groupby(["user_id", "date"])["trade_id"].nunique().items():
        rows.append(("trade_before_kyc", d, u, float(n)))
    # restricted_country_reward
    camp = ctx.campaigns.set_index("campaign_id")["excluded_countries"]
    rw = ctx.rewards.copy()
    rw["date"] = _day(rw["paid_at"])
    for _, r in rw.iterrows():
        exc = camp.get(r["campaign_id"])
        country = users["country"].get(r["user_id"])
        if exc is not None and country is not None and country in set(exc):
            if ctx.first <= r["date"] <= ctx.asof:
                rows.append(
                    ("restricted_country_reward", r["date"], r["reward_id"], r["amount_usd"])
                )
    # volume_spike
    pdk = product_daily_kpis(ctx)
    pdk["activity_date"] = pd.to_datetime(pdk["activity_date"])
    for pid, g in pdk.groupby("product_id"):
        vol = g.set_index("activity_date")["volume_usd"]
        for d, v in vol.items():
            prev = vol[(vol.index >= d - 28 * DAY) & (vol.index <= d - DAY)]
            if len(prev) < 14:
                continue
            mean = prev.mean()
            sd = prev.std(ddof=1)
            if v > mean + 3 * sd and v > 2 * mean:
                rows.append(("volume_spike", d, pid, v))
    # referral_ring
    refs = users[users["referrer_user_id"].notna()]
    for rid, g in refs.groupby("referrer_user_id"):
        referrer = users.loc[rid] if rid in users.index else None
        g = g.sort_values("registered_at")
        for d in sorted(g["reg_date"].unique()):
            members = g[g["reg_date"] <= d]
            cnt = 0
            for _, x in members.iterrows():
                hit = referrer is not None and _shares(x, referrer)
                if not hit:
                    hit = any(
                        _shares(x, y) for _, y in members.iterrows() if y["user_id"] != x["user_id"]
                    )
                cnt += hit
            if cnt >= 3:
                if ctx.first <= d <= ctx.asof:
                    rows.append(("referral_ring", pd.Timestamp(d), rid, float(cnt)))
                break
    df = pd.DataFrame(rows, columns=["alert_type", "alert_date", "subject_id", "metric_value"])
    return _finish(df, KEYS["risk_alerts"])


def dormant_recall_targets(ctx: Context) -> pd.DataFrame:
    tiers = ctx.tiers_on(ctx.asof)
    ids = tiers[tiers == "dormant"].index
    u = ctx.users.loc[ids]
    act = ctx.active[ctx.active["date"] <= ctx.asof]
    last = act.groupby("user_id")["date"].max()
    ut = ctx.user_trades[ctx.user_trades["date"] <= ctx.asof]
    vol = ut.groupby("user_id")["volume_usd"].sum()
    fees = ut.groupby("user_id")["fee_usd"].sum()
    bal = ctx.balances[ctx.balances["snapshot_date"] == ctx.asof].set_index("user_id")["equity_usd"]
    df = pd.DataFrame(
        {
            "user_id": ids,
            "acquisition_channel": u["acquisition_channel"].values,
            "country": u["country"].values,
            "registered_date": u["reg_date"].values,
            "last_active_date": ids.map(last),
        }
    )
    df["days_since_active"] = (ctx.asof - df["last_active_date"]).dt.days
    df["lifetime_volume_usd"] = ids.map(vol).fillna(0.0).values
    df["lifetime_fees_usd"] = ids.map(fees).fillna(0.0).values
    df["latest_equity_usd"] = ids.map(bal).fillna(0.0).values
    return _finish(df, KEYS["dormant_recall_targets"])


# ----------------------------------------------------------------------------- registry

KEYS: dict[str, list[str]] = {
    "exchange_daily_kpis": ["activity_date"],
    "product_daily_kpis": ["product_id", "activity_date"],
    "product_stage_kpis": ["product_id", "lifecycle_stage", "stage_start_date"],
    "user_tier_daily": ["activity_date", "tier"],
    "user_tier_transitions": ["activity_date", "from_tier", "to_tier"],
    "retention_cohorts": ["cohort_week", "acquisition_channel", "week_number"],
    "acquisition_funnel": ["registration_date", "acquisition_channel"],
    "channel_performance": ["month", "acquisition_channel"],
    "cohort_ltv": ["cohort_month", "acquisition_channel", "months_since_registration"],
    "campaign_performance": ["campaign_id"],
    "feedback_daily": ["created_date", "category", "channel"],
    "nps_weekly": ["week_start", "product_line"],
    "risk_alerts": ["alert_type", "alert_date", "subject_id"],
    "dormant_recall_targets": ["user_id"],
}

MARTS: dict[str, Callable[[Context], pd.DataFrame]] = {
    "exchange_daily_kpis": exchange_daily_kpis,
    "product_daily_kpis": product_daily_kpis,
    "product_stage_kpis": product_stage_kpis,
    "user_tier_daily": user_tier_daily,
    "user_tier_transitions": user_tier_transitions,
    "retention_cohorts": retention_cohorts,
    "acquisition_funnel": acquisition_funnel,
    "channel_performance": channel_performance,
    "cohort_ltv": cohort_ltv,
    "campaign_performance": campaign_performance,
    "feedback_daily": feedback_daily,
    "nps_weekly": nps_weekly,
    "risk_alerts": risk_alerts,
    "dormant_recall_targets": dormant_recall_targets,
}

DATE_COLUMNS = {
    "activity_date",
    "stage_start_date",
    "stage_end_date",
    "cohort_week",
    "registration_date",
    "month",
    "cohort_month",
    "start_date",
    "end_date",
    "created_date",
    "week_start",
    "alert_date",
    "registered_date",
    "last_active_date",
}
BOOL_COLUMNS = {"is_current", "is_complete"}
TEXT_COLUMNS = {
    "product_id",
    "product_line",
    "lifecycle_stage",
    "tier",
    "from_tier",
    "to_tier",
    "acquisition_channel",
    "campaign_id",
    "campaign_type",
    "category",
    "channel",
    "alert_type",
    "subject_id",
    "user_id",
    "country",
}


def _finish(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    df = df.copy()
    for c in df.columns:
        if c in DATE_COLUMNS:
            df[c] = _dates(df[c]).astype(object)
        elif c in BOOL_COLUMNS:
            df[c] = df[c].astype(bool)
        elif c in TEXT_COLUMNS:
            df[c] = df[c].map(
                lambda x: None if x is None or (isinstance(x, float) and math.isnan(x)) else str(x)
            )
            df[c] = df[c].astype(object)
        else:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    return df.sort_values(key).reset_index(drop=True)


# ----------------------------------------------------------------------------- comparison


def read_mart(url: str, name: str) -> pd.DataFrame:
    with psycopg.connect(url) as conn:
        cur = conn.execute(f"select * from marts.{name}")
        cols = [d.name for d in cur.description]
        df = pd.DataFrame(cur.fetchall(), columns=cols, dtype=object)
    return df


def _is_usd(col: str, name: str) -> bool:
    return col.endswith("_usd") or (name == "risk_alerts" and col == "metric_value")


def compare(name: str, dbt: pd.DataFrame, ref: pd.DataFrame) -> list[str]:
    """Differences between the dbt mart and the reference; empty when they match."""
    key = KEYS[name]
    cols = [c for c in ref.columns if c not in key]
    problems: list[str] = []
    missing_cols = [c for c in ref.columns if c not in dbt.columns]
    if missing_cols:
        return [f"{name}: dbt mart lacks columns {missing_cols}"]
    dbt = _finish(dbt[list(ref.columns)], key)
    if dbt.duplicated(key).any():
        problems.append(
            f"{name}: duplicate keys in dbt mart: "
            f"{dbt[dbt.duplicated(key, keep=False)][key].head(5).to_dict('records')}"
        )
    m = dbt.merge(ref, on=key, how="outer", suffixes=("_dbt", "_ref"), indicator=True)
    extra = m[m["_merge"] == "left_only"]
    miss = m[m["_merge"] == "right_only"]
    if len(extra):
        problems.append(
            f"{name}: {len(extra)} extra rows in dbt, e.g. {extra[key].head(5).to_dict('records')}"
        )
    if len(miss):
        problems.append(
            f"{name}: {len(miss)} rows missing from dbt, e.g. "
            f"{miss[key].head(5).to_dict('records')}"
        )
    both = m[m["_merge"] == "both"]
    for c in cols:
        a, b = both[f"{c}_dbt"], both[f"{c}_ref"]
        an, bn = a.isna(), b.isna()
        if c in DATE_COLUMNS or c in BOOL_COLUMNS or c in TEXT_COLUMNS:
            bad = (an != bn) | (~an & ~bn & (a.astype(str) != b.astype(str)))
        else:
            af, bf = a.astype(float), b.astype(float)
            if _is_usd(c, name):
                diff = (af - bf).abs() > 0.005 + 1e-9
            else:
                diff = (af - bf).abs() > 1e-9 * np.maximum(af.abs(), bf.abs()) + 1e-12
            bad = (an != bn) | (~an & ~bn & diff)
        if bad.any():
            ex = both[bad].head(3)
            sample = [
                {**{k: r[k] for k in key}, "dbt": r[f"{c}_dbt"], "ref": r[f"{c}_ref"]}
                for _, r in ex.iterrows()
            ]
            problems.append(f"{name}.{c}: {int(bad.sum())} mismatching rows, e.g. {sample}")
    return problems


def verify(url: str, names=None) -> dict[str, list[str]]:
    ctx = load_context(url)
    out = {}
    for name in names or MARTS:
        try:
            out[name] = compare(name, read_mart(url, name), MARTS[name](ctx))
        except Exception as exc:  # noqa: BLE001
            out[name] = [f"{name}: reference failed: {exc!r}"]
    return out


if __name__ == "__main__":  # pragma: no cover
    import os
    import sys

    res = verify(os.environ["EXOPS_WAREHOUSE_URL"], sys.argv[1:] or None)
    for n, p in res.items():
        print(f"{n}: {'match' if not p else 'MISMATCH'}")
        for line in p:
            print("   ", line[:2000])
