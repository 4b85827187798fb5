"""The layer below the marts, recomputed for reconciliations (the ``expected`` side).

Read by relation names that stay put when dbt's internals change: the priced trades
(``intermediate.int_trades_priced``, one row per trade) and the staged sources
(``staging.stg_*``). Each query covers only the run's days (a :class:`Scope`).
"""

from __future__ import annotations

from exops.quality.scope import Scope

TRADES = "intermediate.int_trades_priced"
USERS = "staging.stg_crm__users"
TICKETS = "staging.stg_feedback__tickets"
SURVEY_RESPONSES = "staging.stg_feedback__survey_responses"
MARKETING_SPEND = "staging.stg_crm__marketing_spend"


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
