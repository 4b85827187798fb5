"""Shared by the quality and publish tests (no tests here): a small warehouse whose raw
tables, load audit and marts follow the contract, plus helpers to read the mail sink.

The marts are written directly with the KPIS.md columns so that every number a test checks
is known; their shapes match what dbt builds (dense days, four tiers, seven channels), and
so do their numbers: the staged and intermediate relations the quality gate reconciles them
with (``staging.stg_*``, ``intermediate.int_*``: the priced trades, the users' first trades,
active days, tier spells...) are written to agree with them.

Who is in it: 13 users registered from August on (u_000000..u_000011; u_000012 long before),
and 30 users registered in July (u_000013..u_000042, dormant throughout) whose first trades
make the three retention cohorts of 10; the other traders (``x_``, ``n-``, ``a-`` ids) have
no user record.
"""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from email.message import Message
from email.policy import default as default_policy
from pathlib import Path

import psycopg
import pytest

from exops.contract import ENTITIES
from exops.ingest.audit import ensure_raw_tables

AS_OF = date(2026, 9, 30)
FIRST = date(2026, 9, 1)
EVIL_PRODUCT = "<script>alert(1)</script>"
USERS = 43
USER_EMAILS = [f"person{i}@example.com" for i in range(USERS)]
USER_PHONES = [f"+44 20 7946 {1000 + i}" for i in range(USERS)]
# the retention cohorts (Monday of the week of the first trade): 10 users each, and how many
# of them trade again the week after
COHORTS = {date(2026, 8, 31): 5, date(2026, 9, 7): 5, date(2026, 9, 14): 2}
ACTIVE_USERS = 120  # the same users active every day: WAU = MAU = 120
NEW_TRADERS = 3  # first trades a day
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
PHONE_RE = re.compile(r"\+\d{1,3}[ \d]{8,}")

MART_DDL = """
create schema if not exists marts;
create table marts.exchange_daily_kpis (activity_date date, trade_count bigint,
  volume_usd numeric, fees_usd numeric, traders bigint, active_users bigint, wau bigint,
  mau bigint, stickiness numeric, registrations bigint, new_traders bigint,
  deposits_usd numeric, withdrawals_usd numeric);
create table marts.product_daily_kpis (product_id text, product_line text, activity_date date,
  lifecycle_stage text, trade_count bigint, volume_usd numeric, fees_usd numeric,
  traders bigint, new_traders bigint, subscribe_usd numeric, redeem_usd numeric,
  subscribers bigint);
create table marts.product_stage_kpis (product_id text, product_line text,
  lifecycle_stage text, stage_start_date date, stage_end_date date, days_in_stage bigint,
  volume_usd numeric, avg_daily_volume_usd numeric, avg_daily_traders numeric,
  new_traders bigint, fees_usd numeric, is_current boolean);
create table marts.user_tier_daily (activity_date date, tier text, users bigint,
  active_users bigint, volume_usd numeric, fees_usd numeric, net_deposits_usd numeric);
create table marts.user_tier_transitions (activity_date date, from_tier text, to_tier text,
  users bigint);
create table marts.retention_cohorts (cohort_week date, acquisition_channel text,
  week_number integer, cohort_users bigint, retained_users bigint, retention_rate numeric);
create table marts.acquisition_funnel (registration_date date, acquisition_channel text,
  registered_users bigint, kyc_approved_users bigint, deposited_users bigint,
  traded_users bigint, kyc_rate numeric, deposit_rate numeric, trade_rate numeric,
  median_hours_to_first_trade numeric, is_complete boolean);
create table marts.channel_performance (month date, acquisition_channel text,
  spend_usd numeric, registered_users bigint, new_traders bigint, cac_usd numeric);
create table marts.cohort_ltv (cohort_month date, acquisition_channel text,
  months_since_registration integer, cohort_users bigint, cumulative_fees_usd numeric,
  ltv_usd numeric, is_complete boolean);
create table marts.campaign_performance (campaign_id text, campaign_type text,
  product_line text, start_date date, end_date date, is_complete boolean,
  participants bigint, controls bigint, participant_volume_pre_usd numeric,
  participant_volume_during_usd numeric, control_volume_pre_usd numeric,
  control_volume_during_usd numeric, incremental_volume_usd numeric,
  incremental_fees_usd numeric, cost_usd numeric, roi numeric);
create table marts.feedback_daily (created_date date, category text, channel text,
  tickets bigint, resolved_tickets bigint, resolved_within_24h bigint,
  median_first_response_minutes numeric, avg_csat numeric, csat_responses bigint);
create table marts.nps_weekly (week_start date, product_line text, responses bigint,
  promoters bigint, passives bigint, detractors bigint, nps numeric);
create table marts.risk_alerts (alert_type text, alert_date date, subject_id text,
  metric_value numeric, severity text, details text);
create table marts.dormant_recall_targets (user_id text, acquisition_channel text,
  country text, registered_date date, last_active_date date, days_since_active integer,
  lifetime_volume_usd numeric, lifetime_fees_usd numeric, latest_equity_usd numeric);
"""

CHANNELS = ["organic", "paid_search", "paid_social", "affiliate", "referral", "app_store", "kol"]


def _days() -> list[date]:
    return [FIRST + timedelta(days=i) for i in range((AS_OF - FIRST).days + 1)]


def exchange_row(d: date) -> tuple:
    """Steady days, then a collapse on the as-of date (volume and traders alerts)."""
    last = d == AS_OF
    volume = 400_000 if last else 1_000_000 + (d.day % 3) * 10_000
    traders = 40 if last else 100 + d.day % 2
    registrations = {date(2026, 9, 2): 1, date(2026, 9, 3): 1}.get(d, 0)  # u_000010, u_000011
    active = ACTIVE_USERS
    return (
        d, 90, volume, 950.5, traders, active, active, active, 1, registrations, NEW_TRADERS,
        50_000, 30_000,
    )  # fmt: skip


def build_sample(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_raw_tables(conn)
        conn.execute(MART_DDL)
        _raw(conn)
        _staged(conn)
        _marts(conn)


def _raw(conn: psycopg.Connection) -> None:
    # u_000012 and u_000013.. registered long before the first day with data: dormant
    for i in range(USERS):
        reg = f"2026-08-{20 + i:02d}T10:00:00Z" if i < 10 else f"2026-09-{i - 8:02d}T10:00:00Z"
        reg = "2026-07-01T10:00:00Z" if i == 12 else reg
        reg = f"2026-07-{i - 11:02d}T10:00:00Z" if i > 12 else reg
        conn.execute(
            "insert into raw.crm_users (user_id, registered_at, country, acquisition_channel,"
            " referrer_user_id, kyc_level, email, phone, device_id, signup_ip, updated_at,"
            " _load_id, _dt, _file, _line) values (%s, %s, 'GB', 'organic', null, 1, %s, %s,"
            " %s, %s, %s, 1, %s, 'users.jsonl', %s)",
            (
                f"u_{i:06d}",
                reg,
                USER_EMAILS[i],
                USER_PHONES[i],
                f"dev-{i}",
                f"10.0.0.{i}",
                reg,
                max(FIRST, date.fromisoformat(reg[:10])),
                i + 1,
            ),
        )
    conn.execute(
        "insert into raw.exchange_products values ('BTC-USDT', 'spot', 'BTC', 'USDT', 'BTC/USDT',"
        " 2, %s, 'products.csv', 1)",
        (AS_OF,),
    )
    for n, d in enumerate(_days()):
        conn.execute(
            "insert into raw.exchange_asset_prices values ('USDT', %s, 1, 3, %s, 'p.csv', %s)",
            (d, d, n + 1),
        )
    for n in range(5):
        conn.execute(
            "insert into raw.exchange_trades values (%s, 'BTC-USDT', %s, 60000, 0.1, 6000,"
            " 'buy', 'u_000001', 'u_000002', -0.6, 1.2, 4, %s, 't.csv', %s)",
            (f"T-{n}", f"2026-09-{10 + n}T12:00:00Z", f"2026-09-{10 + n}", n + 1),
        )
    # the load audit of exactly these rows: one file per partition
    for source, entity in (
        ("crm", "users"),
        ("exchange", "products"),
        ("exchange", "asset_prices"),
        ("exchange", "trades"),
    ):
        conn.execute(
            f"""
            insert into audit.loads (load_id, source, entity, partition_date, file_path, sha256,
              file_bytes, rows_in_file, rows_loaded, rows_quarantined, status)
            select _load_id, %(source)s, %(entity)s, _dt,
                   %(entity)s || '/dt=' || _dt || '/part.file', 'x', 100, count(*), count(*), 0,
                   'loaded'
              from raw.{source}_{entity} group by _load_id, _dt
            """,
            {"source": source, "entity": entity},
        )
    # every entity is delivered up to the as-of date: empty deliveries where nothing happened
    conn.execute(
        "insert into audit.loads (load_id, source, entity, partition_date, file_path, sha256,"
        " file_bytes, rows_in_file, rows_loaded, rows_quarantined, status) values"
        " (90, 'crm', 'users', %(d)s, 'users/empty', 'x', 0, 0, 0, 0, 'empty'),"
        " (91, 'exchange', 'trades', %(d)s, 'trades/empty', 'x', 0, 0, 0, 0, 'empty')",
        {"d": AS_OF},
    )
    # ... and so is every other entity of the contract, each day (source health judges them)
    conn.execute(
        "insert into audit.loads (load_id, source, entity, partition_date, file_path, sha256,"
        " file_bytes, rows_in_file, rows_loaded, rows_quarantined, status)"
        " select 1000 + (row_number() over ())::int, e.source, e.entity, d::date,"
        " e.entity || '/dt=' || d::date || '/empty', 'x', 0, 0, 0, 0, 'empty'"
        " from unnest(%(sources)s::text[], %(entities)s::text[]) as e(source, entity),"
        " generate_series(%(first)s::date, %(d)s::date, interval '1 day') as d"
        " where not exists (select from audit.loads l where l.source = e.source"
        "   and l.entity = e.entity and l.partition_date = d::date)",
        {
            "sources": [e.source for e in ENTITIES],
            "entities": [e.name for e in ENTITIES],
            "first": FIRST,
            "d": AS_OF,
        },
    )
    conn.execute(
        "insert into audit.partitions (source, entity, partition_date, fingerprint, load_id,"
        " files, files_rejected, rows_loaded, rows_quarantined, loaded_at, first_loaded_at,"
        " loads) select source, entity, partition_date, 'f', load_id, 1, 0, rows_loaded, 0,"
        " now(), now(), 1 from audit.loads"
    )


def _trades_of(d: date) -> list[tuple]:
    """The 90 priced trades of ``d`` adding up to its exchange row: volume, fees, traders;
    on the as-of date u_000001 and u_000002 each self-trade 6,000 USD (the risk alerts)."""
    _, count, volume, fees, traders = exchange_row(d)[:5]
    if d == AS_OF:
        pairs = [("u_000001", "u_000001"), ("u_000002", "u_000002")]
        pool = traders - 2  # the others trade in a ring
        pairs += [(f"x_{k % pool}", f"x_{(k + 1) % pool}") for k in range(count - 2)]
        fixed = [Decimal(6000), Decimal(6000)]
    else:
        pairs = [(f"x_{k}", f"y_{k % (traders - count)}") for k in range(count)]
        fixed = []
    rest = count - len(fixed)
    each = (Decimal(volume) - sum(fixed)) / rest
    volumes = fixed + [each.quantize(Decimal("0.01"))] * (rest - 1)
    volumes.append(Decimal(volume) - sum(volumes))
    fee = (Decimal(str(fees)) / count).quantize(Decimal("0.0001"))
    fee_list = [fee] * (count - 1) + [Decimal(str(fees)) - fee * (count - 1)]
    return [
        (f"S-{d}-{k}", "BTC-USDT", d, maker, taker, maker == taker, volumes[k], fee_list[k])
        for k, (maker, taker) in enumerate(pairs)
    ]


def _staged(conn: psycopg.Connection) -> None:
    """What dbt would stage and price from the sources behind the sample marts."""
    conn.execute(
        """
        create schema if not exists staging;
        create schema if not exists intermediate;
        create view staging.stg_crm__users as
          select distinct on (user_id) user_id, registered_at,
                 (registered_at at time zone 'UTC')::date as registered_date,
                 acquisition_channel
            from raw.crm_users order by user_id, updated_at desc, _dt desc, _line desc;
        create table intermediate.int_trades_priced (trade_id text, product_id text,
          executed_date date, maker_user_id text, taker_user_id text, is_self_trade boolean,
          volume_usd numeric, fees_usd numeric);
        create table staging.stg_feedback__tickets as
          select 'K-' || d::date || '-' || cat || '-' || ch as ticket_id, d::date as created_date,
                 cat as category, ch as channel, d + interval '9 hours' as created_at,
                 d + interval '9 hours 30 minutes' as first_response_at,
                 d + interval '10 hours' as resolved_at, 4.5 as csat
            from generate_series(date '2026-09-01', date '2026-09-30', interval '1 day') d,
                 unnest(array['deposit_withdrawal', 'trading', 'kyc', 'fees', 'app_bug',
                              'campaign', 'account_security', 'other']) cat,
                 unnest(array['chat', 'email', 'community', 'phone']) ch;
        create table staging.stg_feedback__survey_responses as
          select 'R-' || w || '-' || n as response_id, 'nps' as survey,
                 null::text as product_line, w + n % 3 as submitted_date,
                 case when n < p then 9 when n < 100 - dt then 7 else 3 end as score
            from (values (date '2026-09-21', 50, 10), (date '2026-09-28', 30, 20))
                   as weeks (w, p, dt),
                 generate_series(0, 99) as n;
        create table staging.stg_crm__marketing_spend as
          select date '2026-09-15' as spend_date, c as acquisition_channel,
                 1000::numeric as spend_usd
            from unnest(array['organic', 'paid_search', 'paid_social', 'affiliate', 'referral',
                              'app_store', 'kol']) c;
        """
    )
    with conn.cursor() as cur:
        cur.executemany(
            "insert into intermediate.int_trades_priced values (%s, %s, %s, %s, %s, %s, %s, %s)",
            [t for d in _days() for t in _trades_of(d)],
        )
    _user_layers(conn)


def _first_traders() -> dict[date, list[str]]:
    """NEW_TRADERS first trades a day: the cohort users in their cohort week, the rest
    traders without a user record."""
    cohort_users = {
        week: [f"u_{13 + 10 * n + k:06d}" for k in range(10)] for n, week in enumerate(COHORTS)
    }
    out = {}
    for d in _days():
        week = d - timedelta(days=d.weekday())
        queue = cohort_users.get(week, [])
        users = [queue.pop(0) for _ in range(min(NEW_TRADERS, len(queue)))]
        out[d] = users + [f"n-{d}-{k}" for k in range(NEW_TRADERS - len(users))]
    assert not any(cohort_users.values()), "every cohort user has a first trade"
    return out


def _user_layers(conn: psycopg.Connection) -> None:
    """The per-user intermediates and the staged campaigns, balances and wealth events that
    the sample marts' other numbers add up from."""
    conn.execute(
        f"""
        create table intermediate.int_user_first_trades (user_id text, first_trade_at
          timestamptz, first_trade_date date);
        create table intermediate.int_user_product_first_trades (user_id text,
          product_id text, first_trade_date date);
        create table intermediate.int_user_trading_weeks (user_id text, trade_week date);
        -- ACTIVE_USERS users without a user record, active every day since August
        create table intermediate.int_user_activity_daily as
          select 'a-' || k as user_id, d::date as activity_date, true as is_active,
                 0::numeric as volume_usd, 0::numeric as fees_usd, 0::numeric as deposits_usd,
                 0::numeric as withdrawals_usd
            from generate_series(0, {ACTIVE_USERS - 1}) as k,
                 generate_series(date '2026-08-01', date '{AS_OF}', interval '1 day') as d;
        -- u_000010's fees in September: cohort_ltv's September cohort
        create table intermediate.int_user_activity_monthly as
          select 'u_000010' as user_id, date '2026-09-01' as activity_month,
                 0::numeric as volume_usd, 25::numeric as fees_usd,
                 25::numeric as fees_since_registration_usd;
        create table intermediate.int_transfers_priced as
          select 'D-' || d::date as transfer_id, 'a-0' as user_id, 'deposit' as direction,
                 50000::numeric as amount_usd, d::date as created_date
            from generate_series(date '{FIRST}', date '{AS_OF}', interval '1 day') as d
          union all
          select 'W-' || d::date, 'a-1', 'withdrawal', 30000, d::date
            from generate_series(date '{FIRST}', date '{AS_OF}', interval '1 day') as d;
        create table intermediate.int_wealth_events_priced (event_id text, user_id text,
          product_id text, event_type text, amount_usd numeric, event_date date);
        create table staging.stg_exchange__account_balances (user_id text,
          snapshot_date date, equity_usd numeric);
        -- the sample's tiers: before August dormant, u_000000..2 active, the others new
        create table intermediate.int_user_tier_spells as
          select user_id,
                 case when registered_date < '2026-08-01' then 'dormant'
                      when user_id <= 'u_000002' then 'active' else 'new' end as tier,
                 null::text as from_tier, registered_date as valid_from,
                 date '9999-12-31' as valid_to
            from staging.stg_crm__users;
        create table intermediate.int_user_tier_changes as
          select user_id, valid_from, tier, from_tier from intermediate.int_user_tier_spells;
        create table intermediate.int_users_funnel_steps as
          select user_id, registered_at, registered_date, acquisition_channel,
                 null::timestamptz as first_kyc_approved_at,
                 null::timestamptz as first_deposit_at, null::timestamptz as first_trade_at
            from staging.stg_crm__users;
        -- C1: 40 participants, 100 USD of rewards; C2: 3 participants, none yet
        create table staging.stg_crm__campaigns as
          select * from (values ('C1', date '2026-09-10'), ('C2', date '{AS_OF}'))
            as c (campaign_id, start_date);
        create table staging.stg_crm__campaign_enrollments as
          select 'C1' as campaign_id, 'e-' || k as user_id from generate_series(1, 40) as k
          union all select 'C2', 'e-' || k from generate_series(1, 3) as k;
        create table staging.stg_crm__rewards as
          select 'RW-1' as reward_id, 'C1' as campaign_id, 'e-1' as user_id,
                 100::numeric as amount_usd, date '2026-09-20' as paid_date;
        """,
    )
    with conn.cursor() as cur:
        firsts = _first_traders()
        cur.executemany(
            "insert into intermediate.int_user_first_trades values (%s, %s, %s)",
            [(u, f"{d}T12:00:00Z", d) for d, users in firsts.items() for u in users],
        )
        cur.executemany(
            "insert into intermediate.int_user_product_first_trades values (%s, 'BTC-USDT', %s)",
            [(users[0], d) for d, users in firsts.items()],
        )
        weeks = []
        for n, (week, again) in enumerate(COHORTS.items()):
            for k in range(10):
                user = f"u_{13 + 10 * n + k:06d}"
                weeks.append((user, week))
                if k < again:
                    weeks.append((user, week + timedelta(days=7)))
        cur.executemany("insert into intermediate.int_user_trading_weeks values (%s, %s)", weeks)


def _marts(conn: psycopg.Connection) -> None:
    ins = conn.execute
    for d in _days():
        ins(
            "insert into marts.exchange_daily_kpis values"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            exchange_row(d),
        )
        ins(
            "insert into marts.product_daily_kpis values ('BTC-USDT', 'spot', %s,"
            " 'daily_operations', 90, %s, 950.5, %s, 1, 0, 0, 0)",
            (d, exchange_row(d)[2], exchange_row(d)[4]),
        )
    ins(
        "insert into marts.product_daily_kpis values (%s, 'spot', %s, 'cold_start', 0, 0, 0,"
        " 0, 0, 0, 0, 0)",
        (EVIL_PRODUCT, AS_OF),
    )
    # the product's days: one run of daily operations
    ins(
        "insert into marts.product_stage_kpis select 'BTC-USDT', 'spot', 'daily_operations',"
        " min(activity_date), max(activity_date), count(*), sum(volume_usd), avg(volume_usd),"
        " avg(traders), sum(new_traders), sum(fees_usd), true from marts.product_daily_kpis"
        " where product_id = 'BTC-USDT'"
    )
    ins(
        "insert into marts.product_stage_kpis values"
        " (%s, 'spot', 'cold_start', %s, %s, 1, 0, 0, 0, 0, 0, true)",
        (EVIL_PRODUCT, AS_OF, AS_OF),
    )
    # every registered user in exactly one tier each day: those registered before August
    # 'dormant', then at most 3 'active', the rest 'new'
    ins(
        """
        insert into marts.user_tier_daily
        select d::date, t,
               case t when 'dormant' then old when 'active' then least(3, n - old)
                      when 'new' then n - old - least(3, n - old) else 0 end,
               0, 0, 0, 0
          from generate_series(%s::date, %s::date, interval '1 day') d
          cross join lateral (select count(*) as n,
                                     count(*) filter (where registered_date < '2026-08-01') as old
                                from staging.stg_crm__users
                               where registered_date <= d::date) c
          cross join unnest(array['new', 'active', 'high_net_worth', 'dormant']) t
        """,
        (FIRST, AS_OF),
    )
    # two users move up from new to active and two down: the tiers' counts stay put
    ins(
        "insert into marts.user_tier_transitions values (%s, 'new', 'active', 2),"
        " (%s, 'active', 'new', 2)",
        (AS_OF, AS_OF),
    )
    for week, again in COHORTS.items():
        for channel in ("organic", "all"):
            ins(
                "insert into marts.retention_cohorts values (%s, %s, 0, 10, 10, 1),"
                " (%s, %s, 1, 10, %s, %s)",
                (week, channel, week, channel, again, Decimal(again) / 10),
            )
    # the two September registrations (organic) and nobody reaching a funnel step
    ins(
        """
        insert into marts.acquisition_funnel
        select d::date, c, n, 0, 0, 0, nullif(0, n), nullif(0, n), nullif(0, n), null,
               d::date <= %s::date - 7
          from generate_series(%s::date, %s::date, interval '1 day') d, unnest(%s::text[]) c,
               lateral (select count(*) as n from staging.stg_crm__users u
                         where u.registered_date = d::date and u.acquisition_channel = c) r
        """,
        (AS_OF, FIRST, AS_OF, CHANNELS),
    )
    ins(
        "insert into marts.channel_performance select '2026-09-01', c,"
        " 1000, case c when 'organic' then 2 else 0 end, case c when 'organic' then 30 else 0"
        " end, case c when 'organic' then 1000 / 30::numeric end from unnest(%s::text[]) c",
        (CHANNELS,),
    )
    ins("insert into marts.cohort_ltv values ('2026-09-01', 'organic', 0, 2, 25, 12.5, false)")
    ins(
        "insert into marts.campaign_performance values"
        " ('C1', 'fee_discount', 'spot', '2026-09-10', %s, true, 40, 400, 1000, 1500, 1000,"
        " 1000, 500, 50, 100, -0.5),"
        " ('C2', 'trading_competition', null, %s, '2026-10-20', false, 3, 300, 0, 0, 0, 0,"
        " 0, 0, 0, null)",
        (AS_OF - timedelta(days=2), AS_OF),
    )
    ins(
        """
        insert into marts.feedback_daily
        select d::date, cat, ch, 1, 1, 1, 30, 4.5, 1
          from generate_series(%s::date, %s::date, interval '1 day') d,
               unnest(array['deposit_withdrawal', 'trading', 'kyc', 'fees', 'app_bug',
                            'campaign', 'account_security', 'other']) cat,
               unnest(array['chat', 'email', 'community', 'phone']) ch
        """,
        (FIRST, AS_OF),
    )
    for week, promoters, detractors in ((date(2026, 9, 21), 50, 10), (date(2026, 9, 28), 30, 20)):
        nps = 100 * (promoters - detractors) / 100
        ins(
            "insert into marts.nps_weekly values (%s, 'all', 100, %s, %s, %s, %s)",
            (week, promoters, 100 - promoters - detractors, detractors, nps),
        )
    ins(
        "insert into marts.risk_alerts values"
        " ('self_trade', %s, 'u_000001', 6000, 'high', 'self-trade volume'),"
        " ('self_trade', %s, 'u_000002', 6000, 'high', 'self-trade volume'),"
        " ('volume_spike', %s, 'BTC-USDT', 400000, 'medium', 'spike')",
        (AS_OF, AS_OF, AS_OF),
    )
    ins(
        "insert into marts.dormant_recall_targets select user_id, 'organic', 'GB',"
        " registered_date, null, null, 0, 0, 0 from staging.stg_crm__users"
        " where registered_date < '2026-08-01'"
    )


def read_mail(directory: Path) -> list[Message]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=default_policy)
        for p in sorted(directory.glob("*.eml"))
    ]


def text_of(message: Message) -> str:
    """Every text part (plain, HTML, CSV) of a message, decoded."""
    parts = []
    for part in message.walk():
        if part.get_content_maintype() == "text":
            parts.append(part.get_content())
    return "\n".join(parts)


@contextmanager
def mail_environment(var: Path, recipients: dict[str, str]) -> Iterator[Path]:
    """A real SMTP sink and the EXOPS_* settings that point at it; yields the mail folder.

    ``recipients`` maps an audience (ops, risk, data_eng) to its comma-separated addresses.
    """
    from exops.publish.mailsink import start_sink

    mail = var / "mail"
    host, port, stop = start_sink(directory=mail)
    mp = pytest.MonkeyPatch()
    mp.setenv("EXOPS_VAR_DIR", str(var))
    mp.setenv("EXOPS_SMTP_HOST", host)
    mp.setenv("EXOPS_SMTP_PORT", str(port))
    mp.setenv("EXOPS_SMTP_STARTTLS", "false")
    mp.setenv("EXOPS_MAIL_FROM", "exops@platform.test")
    for audience, addresses in recipients.items():
        mp.setenv(f"EXOPS_MAIL_TO_{audience.upper()}", addresses)
    try:
        yield mail
    finally:
        stop()
        mp.undo()


def html_rows(html: str) -> list[list[str]]:
    """The cells of every table row of an HTML page, as text (tags and their styles left out),
    so that tests read what a reader sees, whatever the markup around it."""
    import html as html_lib
    import re

    def text(fragment: str) -> str:
        return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())

    return [
        [text(cell) for cell in re.findall(r"<t[dh]\b[^>]*>(.*?)</t[dh]>", row, flags=re.S)]
        for row in re.findall(r"<tr\b[^>]*>(.*?)</tr>", html, flags=re.S)
    ]


def html_text(html: str) -> str:
    """An HTML page's visible text, whitespace collapsed."""
    import html as html_lib
    import re

    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", html)).split())
