"""The layer below the marts, recomputed for reconciliations (the ``expected`` side).

Read by relation names that stay put when dbt's internals change: the priced trades
(``intermediate.int_trades_priced``, one row per trade), the staged sources
(``staging.stg_*``) and the few per-user intermediates a number is defined on (a user's first
trade, their activity of a day, their tier changes). Each query covers only the run's days (a
:class:`Scope`).
"""

from __future__ import annotations

from datetime import timedelta

from exops.quality.scope import Scope

TRADES = "intermediate.int_trades_priced"
USERS = "staging.stg_crm__users"
TICKETS = "staging.stg_feedback__tickets"
SURVEY_RESPONSES = "staging.stg_feedback__survey_responses"
MARKETING_SPEND = "staging.stg_crm__marketing_spend"
ENROLLMENTS = "staging.stg_crm__campaign_enrollments"
CAMPAIGNS = "staging.stg_crm__campaigns"
REWARDS = "staging.stg_crm__rewards"
FIRST_TRADES = "intermediate.int_user_first_trades"
PRODUCT_FIRST_TRADES = "intermediate.int_user_product_first_trades"
USER_DAYS = "intermediate.int_user_activity_daily"
USER_MONTHS = "intermediate.int_user_activity_monthly"
BALANCES = "staging.stg_exchange__account_balances"
TRADING_WEEKS = "intermediate.int_user_trading_weeks"
TIER_CHANGES = "intermediate.int_user_tier_changes"
TIER_SPELLS = "intermediate.int_user_tier_spells"
TRANSFERS = "intermediate.int_transfers_priced"
WEALTH_EVENTS = "intermediate.int_wealth_events_priced"
FUNNEL_STEPS = "intermediate.int_users_funnel_steps"
# a distinct count over each day's last 28 days reads 28 times a day's active users: the
# WAU / MAU reconciliation covers at most this many of the run's last days, also in --full
ROLLING_DAYS_CHECKED = 35


def priced_trades(scope: Scope, by: tuple[str, ...] = ()) -> str:
    """Per day (``activity_date``) and ``by`` columns of the trades: trade_count,
    volume_usd, fees_usd (each trade once) and traders (distinct users on either side).

    Per day alone, one pass over the trades grouped by day and user (a hashed aggregation,
    about a day's users per day). With ``by`` columns those groups (user x product x day)
    outgrow memory over long spans (a month at 200,000 users: 17.8 s against 12.5 s), so the
    totals and the distinct traders are counted apart, as sorting handles them.
    """
    keys = ", ".join(("executed_date", *by))
    within = scope.days("executed_date")
    picked = ", ".join(["executed_date as activity_date", *by])
    sides = (
        f" from {TRADES} cross join lateral"
        " (values (maker_user_id, false), (taker_user_id, true)) as side (user_id, taker)"
        f" where {within}"
    )
    if not by:
        return (
            f"with day_users as (select {keys}, side.user_id,"
            " count(*) filter (where side.taker) as trade_count,"
            " sum(volume_usd) filter (where side.taker) as volume_usd,"
            " sum(fees_usd) filter (where side.taker) as fees_usd"
            f"{sides} group by {keys}, side.user_id) "
            f"select {picked}, sum(trade_count)::bigint as trade_count,"
            " sum(volume_usd) as volume_usd, sum(fees_usd) as fees_usd,"
            f" count(user_id) as traders from day_users group by {keys}"
        )
    on = " and ".join(f"t.{k} = u.{k}" for k in ("executed_date", *by))
    return (
        f"with totals as (select {keys}, count(*) as trade_count,"
        " sum(volume_usd) as volume_usd, sum(fees_usd) as fees_usd"
        f" from {TRADES} where {within} group by {keys}), "
        f"traders as (select {keys}, count(distinct side.user_id) as traders{sides}"
        f" group by {keys}) "
        f"select {', '.join(['t.executed_date as activity_date', *(f't.{k}' for k in by)])},"
        " t.trade_count, t.volume_usd, t.fees_usd, u.traders"
        f" from totals as t join traders as u on {on}"
    )


def registrations(scope: Scope) -> str:
    """Staged users (latest state) per registration day and channel."""
    return (
        "select registered_date as registration_date, acquisition_channel,"
        f" count(*) as registered_users from {USERS}"
        f" where {scope.days('registered_date')} group by 1, 2"
    )


def cohorts(scope: Scope) -> str:
    """Staged users per registration month (first day) and channel."""
    month = "date_trunc('month', registered_date)::date"
    return (
        f"select {month} as cohort_month, acquisition_channel, count(*) as cohort_users"
        f" from {USERS} where {scope.periods(month, 'month')}"
        f" and registered_date <= date '{scope.as_of.isoformat()}' group by 1, 2"
    )


def registered_by_day(days: str) -> str:
    """Users registered on or before each ``activity_date`` of the query ``days``."""
    return (
        f"with per_day as (select registered_date, count(*) as n from {USERS} group by 1) "
        "select d.activity_date, coalesce(sum(per_day.n), 0) as users"
        f" from ({days}) as d left join per_day on per_day.registered_date <= d.activity_date"
        " group by 1"
    )


def tickets(scope: Scope) -> str:
    """Staged tickets (latest state) per creation day, category and channel."""
    return (
        f"select created_date, category, channel, count(*) as tickets from {TICKETS}"
        f" where {scope.days('created_date')} group by 1, 2, 3"
    )


def nps_responses(scope: Scope) -> str:
    """NPS responses per week (Monday) and product line, plus 'all' (every response)."""
    week = "date_trunc('week', submitted_date)::date"
    counts = (
        "count(*) as responses, count(*) filter (where score >= 9) as promoters,"
        " count(*) filter (where score between 7 and 8) as passives,"
        " count(*) filter (where score <= 6) as detractors"
    )
    within = f"survey = 'nps' and {scope.periods(week, 'week')}"
    within += f" and submitted_date <= date '{scope.as_of.isoformat()}'"
    return (
        f"select {week} as week_start, product_line, {counts} from {SURVEY_RESPONSES}"
        f" where {within} and product_line is not null group by 1, 2"
        f" union all select {week}, 'all', {counts} from {SURVEY_RESPONSES}"
        f" where {within} group by 1"
    )


def channel_months(scope: Scope) -> str:
    """Marketing spend and registrations per month (first day) and channel."""
    month = "date_trunc('month', {})::date"
    spend_month = month.format("spend_date")
    reg_month = month.format("registered_date")
    return (
        f"with spend as (select {spend_month} as month, acquisition_channel,"
        f" sum(spend_usd) as spend_usd from {MARKETING_SPEND}"
        f" where {scope.periods(spend_month, 'month')}"
        f" and spend_date <= date '{scope.as_of.isoformat()}' group by 1, 2), "
        f"registered as (select {reg_month} as month, acquisition_channel,"
        f" count(*) as registered_users from {USERS}"
        f" where {scope.periods(reg_month, 'month')}"
        f" and registered_date <= date '{scope.as_of.isoformat()}' group by 1, 2) "
        "select month, acquisition_channel, coalesce(spend.spend_usd, 0) as spend_usd,"
        " coalesce(registered.registered_users, 0) as registered_users"
        " from spend full join registered using (month, acquisition_channel)"
    )


def _date(day) -> str:
    return f"date '{day.isoformat()}'"


def exchange_activity(scope: Scope) -> str:
    """Per day: new_traders (users whose first trade is that day), active_users (users with a
    trade on either side or a wealth event that day: the active user days; the traders are
    reconciled with the trades themselves), deposits_usd and withdrawals_usd (completed
    transfers, priced)."""
    return (
        f"with firsts as (select first_trade_date as activity_date, count(*) as new_traders"
        f" from {FIRST_TRADES} where {scope.days('first_trade_date')} group by 1), "
        "active as (select activity_date, count(*) as active_users"
        f" from {USER_DAYS} where is_active and {scope.days('activity_date')} group by 1), "
        "transfers as (select created_date as activity_date,"
        " sum(amount_usd) filter (where direction = 'deposit') as deposits_usd,"
        " sum(amount_usd) filter (where direction = 'withdrawal') as withdrawals_usd"
        f" from {TRANSFERS} where {scope.days('created_date')} group by 1) "
        "select activity_date, coalesce(new_traders, 0) as new_traders,"
        " coalesce(active_users, 0) as active_users,"
        " coalesce(deposits_usd, 0) as deposits_usd,"
        " coalesce(withdrawals_usd, 0) as withdrawals_usd"
        " from firsts full join active using (activity_date)"
        " full join transfers using (activity_date)"
    )


def rolling_days(scope: Scope) -> str:
    """SQL condition on ``activity_date``: the days the WAU / MAU reconciliation checks."""
    first = max(scope.start, scope.as_of - timedelta(days=ROLLING_DAYS_CHECKED - 1))
    return f"activity_date >= {_date(first)} and activity_date <= {_date(scope.as_of)}"


def rolling_users(scope: Scope, wau_days: int, mau_days: int) -> str:
    """Per checked day d of exchange_daily_kpis: the distinct users active on
    d-(wau_days-1)..d (wau) and on d-(mau_days-1)..d (mau)."""
    return (
        "with days as (select activity_date from marts.exchange_daily_kpis"
        f" where {rolling_days(scope)}), "
        f"active as (select user_id, activity_date from {USER_DAYS} where is_active"
        f" and activity_date >= (select min(activity_date) from days) - {mau_days - 1}"
        f" and activity_date <= {_date(scope.as_of)}), "
        # each user once per day (hashed: a distinct count would sort every pair)
        "user_days as (select days.activity_date, active.user_id,"
        f" max(active.activity_date) >= days.activity_date - {wau_days - 1} as in_wau"
        " from days left join active on active.activity_date <= days.activity_date"
        f" and active.activity_date >= days.activity_date - {mau_days - 1}"
        " group by 1, 2) "
        "select activity_date, count(user_id) filter (where in_wau) as wau,"
        " count(user_id) as mau from user_days group by 1"
    )


def registered_activity(scope: Scope) -> str:
    """Per day, the activity of the users registered by then (the users the tiers cover):
    active users, user volume, user fees, completed deposits - withdrawals."""
    within = scope.days("activity.activity_date")
    return (
        "select activity.activity_date, count(*) filter (where activity.is_active)"
        " as active_users, sum(activity.volume_usd) as volume_usd,"
        " sum(activity.fees_usd) as fees_usd,"
        " sum(activity.deposits_usd - activity.withdrawals_usd) as net_deposits_usd"
        f" from {USER_DAYS} as activity join {USERS} as users using (user_id)"
        f" where users.registered_date <= activity.activity_date and {within}"
        " group by 1"
    )


def tier_members(scope: Scope) -> str:
    """Per day and tier: the users whose tier spell covers the day."""
    return (
        "select days.activity_date, spells.tier, count(*) as users"
        f" from (select distinct activity_date from marts.user_tier_daily"
        f" where {scope.days('activity_date')}) as days"
        f" join {TIER_SPELLS} as spells on spells.valid_from <= days.activity_date"
        " and spells.valid_to >= days.activity_date group by 1, 2"
    )


def tier_net_changes(scope: Scope) -> str:
    """Per day (after the first) and tier: the change in the tier's users from the day before,
    less the users registered that day in it: the net of the tier changes of the users
    registered before the day (what the day's transitions into and out of the tier add up
    to)."""
    within = scope.days("activity_date")
    before = _date(scope.start - timedelta(days=1))
    return (
        "with tiers as (select activity_date, tier, users - lag(users) over"
        " (partition by tier order by activity_date) as change from marts.user_tier_daily"
        f" where activity_date >= {before} and activity_date <= {_date(scope.as_of)}), "
        "registered as (select valid_from as activity_date, tier, count(*) as users"
        f" from {TIER_CHANGES} where from_tier is null and {scope.days('valid_from')}"
        " group by 1, 2) "
        "select tiers.activity_date, tiers.tier,"
        " tiers.change - coalesce(registered.users, 0) as net_users"
        " from tiers left join registered using (activity_date, tier)"
        f" where {within} and tiers.change is not null"
    )


def product_activity(scope: Scope) -> str:
    """Per product and day: new_traders (first trades on the product), subscribe_usd,
    redeem_usd (priced wealth events) and subscribers (distinct users subscribing)."""
    return (
        "with firsts as (select product_id, first_trade_date as activity_date,"
        f" count(*) as new_traders from {PRODUCT_FIRST_TRADES}"
        f" where {scope.days('first_trade_date')} group by 1, 2), "
        "wealth as (select product_id, event_date as activity_date,"
        " sum(amount_usd) filter (where event_type = 'subscribe') as subscribe_usd,"
        " sum(amount_usd) filter (where event_type = 'redeem') as redeem_usd,"
        " count(distinct user_id) filter (where event_type = 'subscribe') as subscribers"
        f" from {WEALTH_EVENTS} where {scope.days('event_date')} group by 1, 2) "
        "select product_id, activity_date, coalesce(new_traders, 0) as new_traders,"
        " coalesce(subscribe_usd, 0) as subscribe_usd, coalesce(redeem_usd, 0) as redeem_usd,"
        " coalesce(subscribers, 0) as subscribers"
        " from firsts full join wealth using (product_id, activity_date)"
    )


def channel_first_traders(scope: Scope, period: str, column: str) -> str:
    """The users with a staged user record, by the ``period`` ('week', 'month') of their first
    trade (as ``column``) and their channel; periods holding a day the run checks."""
    start = f"date_trunc('{period}', first.first_trade_date)::date"
    return (
        f"select {start} as {column}, users.acquisition_channel, first.user_id"
        f" from {FIRST_TRADES} as first join {USERS} as users using (user_id)"
        f" where {scope.periods(start, period)}"
        f" and first.first_trade_date <= {_date(scope.as_of)}"
    )


def channel_new_traders(scope: Scope) -> str:
    """New traders per month (of the first trade) and channel."""
    return (
        "select month, acquisition_channel, count(*) as new_traders"
        f" from ({channel_first_traders(scope, 'month', 'month')}) as f group by 1, 2"
    )


def retention_cohort_users(scope: Scope) -> str:
    """Users per cohort week (of the first trade) and channel, plus 'all': the weeks that
    ended by the as-of date (a cohort has rows from the end of its first week)."""
    return (
        f"with f as (select * from ({channel_first_traders(scope, 'week', 'cohort_week')})"
        f" as w where cohort_week + 6 <= {_date(scope.as_of)}) "
        "select cohort_week, acquisition_channel, count(*) as cohort_users from f group by 1, 2"
        " union all select cohort_week, 'all', count(*) from f group by 1"
    )


def retained_users(weeks: str, as_of, last_week: int) -> str:
    """Per cohort week, channel (and 'all') and week number (0..last_week): the cohort's users
    trading in that week, for the ended trading weeks that satisfy ``weeks`` (on
    ``trade_week``)."""
    return (
        "with w as (select weeks.user_id, date_trunc('week', first.first_trade_date)::date"
        " as cohort_week, users.acquisition_channel, weeks.trade_week"
        f" from {TRADING_WEEKS} as weeks join {FIRST_TRADES} as first using (user_id)"
        f" join {USERS} as users using (user_id)"
        f" where {weeks} and weeks.trade_week + 6 <= {_date(as_of)}), "
        "n as (select *, (trade_week - cohort_week) / 7 as week_number from w"
        f" where trade_week >= cohort_week and trade_week - cohort_week <= {7 * last_week}) "
        "select cohort_week, acquisition_channel, week_number,"
        " count(distinct user_id) as retained_users from n group by 1, 2, 3"
        " union all select cohort_week, 'all', week_number, count(distinct user_id) from n"
        " group by 1, 3"
    )


def campaign_members(scope: Scope) -> str:
    """Per campaign started by the as-of date: enrolled users, and its rewards paid by then."""
    as_of = _date(scope.as_of)
    return (
        "with started as (select campaign_id from"
        f" {CAMPAIGNS} where start_date <= {as_of}), "
        "enrolled as (select campaign_id, count(distinct user_id) as participants"
        f" from {ENROLLMENTS} group by 1), "
        "paid as (select campaign_id, sum(amount_usd) as cost_usd"
        f" from {REWARDS} where paid_date <= {as_of} group by 1) "
        "select campaign_id, coalesce(enrolled.participants, 0) as participants,"
        " coalesce(paid.cost_usd, 0) as cost_usd"
        " from started left join enrolled using (campaign_id)"
        " left join paid using (campaign_id)"
    )


def ticket_outcomes(scope: Scope) -> str:
    """Staged tickets (latest state) per creation day, category and channel: resolved, resolved
    within 24 hours, rated, the mean rating and the median minutes to the first response."""
    return (
        "select created_date, category, channel,"
        " count(*) filter (where resolved_at is not null) as resolved_tickets,"
        " count(*) filter (where resolved_at - created_at <= interval '24 hours')"
        " as resolved_within_24h, count(csat) as csat_responses,"
        " avg(csat::numeric) as avg_csat,"
        " extract(epoch from percentile_cont(0.5) within group"
        " (order by first_response_at - created_at)) / 60 as median_first_response_minutes"
        f" from {TICKETS} where {scope.days('created_date')} group by 1, 2, 3"
    )


def funnel_steps(first_day, as_of, window_hours: int) -> str:
    """Per registration day (``first_day``..``as_of``) and channel: the users whose first
    approved KYC, first completed deposit and first trade came within ``window_hours`` of
    registering, and the median hours to that first trade."""
    within = f"between interval '0' and interval '{window_hours} hours'"
    return (
        "select registered_date as registration_date, acquisition_channel,"
        f" count(*) filter (where first_kyc_approved_at - registered_at {within})"
        " as kyc_approved_users,"
        f" count(*) filter (where first_deposit_at - registered_at {within})"
        " as deposited_users,"
        f" count(*) filter (where first_trade_at - registered_at {within}) as traded_users,"
        " extract(epoch from percentile_cont(0.5) within group"
        f" (order by first_trade_at - registered_at) filter"
        f" (where first_trade_at - registered_at {within})) / 3600"
        " as median_hours_to_first_trade"
        f" from {FUNNEL_STEPS} where registered_date >= {_date(first_day)}"
        f" and registered_date <= {_date(as_of)} group by 1, 2"
    )


def cohort_fees(scope: Scope) -> str:
    """Per registration month, channel and month offset whose month holds a day the run
    checks: the user fees of the month's registrations (from their registration on) up to the
    end of that month (the as-of date at the latest: nothing later is loaded)."""
    first = f"date_trunc('month', {_date(scope.start)})::date"
    last = f"date_trunc('month', {_date(scope.as_of)})::date"
    cohort = "date_trunc('month', users.registered_date)::date"
    return (
        f"with checked as (select month::date from generate_series({first}, {last},"
        " interval '1 month') as month), "
        f"fees as (select {cohort} as cohort_month, users.acquisition_channel, checked.month,"
        " sum(user_months.fees_since_registration_usd) as cumulative_fees_usd"
        f" from {USER_MONTHS} as user_months join {USERS} as users using (user_id)"
        " join checked on user_months.activity_month <= checked.month"
        f" where users.registered_date <= {_date(scope.as_of)}"
        f" and {cohort} <= checked.month group by 1, 2, 3) "
        "select cohort_month, acquisition_channel,"
        " ((extract(year from month) - extract(year from cohort_month)) * 12"
        " + extract(month from month) - extract(month from cohort_month))::integer"
        " as months_since_registration, cumulative_fees_usd from fees"
    )


def dormant_totals(scope: Scope) -> str:
    """The users whose tier on the as-of date is dormant: their volume and fees over all
    their months, and their equity on the as-of date (0 without a snapshot).

    The equity is looked up user by user (the balances' key is the day, then the user):
    PostgreSQL estimates the newest day's snapshots at a row or so until they are analyzed,
    and a join it plans on that compares every snapshot with every dormant user (10 s at
    20,000 users)."""
    as_of = _date(scope.as_of)
    return (
        f"with dormant as (select spells.user_id from {TIER_SPELLS} as spells"
        f" where spells.tier = 'dormant' and spells.valid_from <= {as_of}"
        f" and spells.valid_to >= {as_of}"
        f" and exists (select from {USERS} as users where users.user_id = spells.user_id)), "
        "months as (select sum(volume_usd) as volume_usd, sum(fees_usd) as fees_usd"
        f" from {USER_MONTHS} where user_id in (select user_id from dormant)) "
        "select 'dormant' as tier, (select volume_usd from months) as lifetime_volume_usd,"
        " (select fees_usd from months) as lifetime_fees_usd,"
        " (select sum(equity.equity_usd) from dormant cross join lateral"
        f" (select equity_usd from {BALANCES} as balances where balances.snapshot_date = {as_of}"
        " and balances.user_id = dormant.user_id limit 1) as equity) as latest_equity_usd"
    )
