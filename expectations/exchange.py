"""exchange_daily_kpis: its totals against the priced trades, the users' first trades and
activity, the completed transfers and the funnel's registrations."""

from exops.marts import mart
from exops.quality import reference
from exops.quality.builders import day_over_day, derived, mart_suite, reconciliation
from exops.transform import project_vars


def suites(scope, tables):
    spec = mart_suite(mart("exchange_daily_kpis"), scope)
    spec.requires = {
        reference.TRADES,
        reference.FIRST_TRADES,
        reference.TRANSFERS,
        reference.USER_DAYS,
        "marts.acquisition_funnel",
    }
    e = spec.expectations
    e.append(
        reconciliation(
            "trade_count, volume_usd, fees_usd, traders = the day's priced trades",
            ("activity_date",),
            reference.priced_trades(scope),
            {"trade_count": 0, "volume_usd": 0.01, "fees_usd": 0.01, "traders": 0},
            scope.days("activity_date"),
        )
    )
    e.append(
        reconciliation(
            "registrations = acquisition_funnel registered_users over channels",
            ("activity_date",),
            "select registration_date as activity_date, sum(registered_users) as registrations"
            f" from marts.acquisition_funnel where {scope.days('registration_date')}"
            " group by 1",
            {"registrations": 0},
            scope.days("activity_date"),
        )
    )
    e.append(
        reconciliation(
            "new_traders, active_users, deposits_usd, withdrawals_usd = the day's first trades,"
            " active users and completed transfers",
            ("activity_date",),
            reference.exchange_activity(scope),
            {"new_traders": 0, "active_users": 0, "deposits_usd": 0.01, "withdrawals_usd": 0.01},
            scope.days("activity_date"),
        )
    )
    dbt_vars = project_vars()
    e.append(
        reconciliation(
            "wau, mau = distinct active users over the day's last 7 and 28 days",
            ("activity_date",),
            reference.rolling_users(
                scope, int(dbt_vars["wau_window_days"]), int(dbt_vars["mau_window_days"])
            ),
            {"wau": 0, "mau": 0},
            reference.rolling_days(scope),
        )
    )
    e.append(
        derived(
            "stickiness = active_users / mau",
            ("activity_date",),
            {"stickiness": ("active_users::numeric / nullif(mau, 0)", 1e-9)},
            scope.days("activity_date"),
        )
    )
    # nothing below to reconcile the size of a day with: a bound on its change, reported
    for column in ("trade_count", "volume_usd", "traders"):
        e.append(day_over_day(column, "activity_date", 10, scope))
    return [spec]
