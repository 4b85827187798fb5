"""exchange_daily_kpis: its totals against the priced trades and the funnel's registrations."""

from exops.marts import mart
from exops.quality import reference
from exops.quality.builders import day_over_day, mart_suite, reconciliation


def suites(scope, tables):
    spec = mart_suite(mart("exchange_daily_kpis"), scope)
    spec.requires = {reference.TRADES, "marts.acquisition_funnel"}
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
    # nothing below to reconcile the size of a day with: a bound on its change, reported
    for column in ("trade_count", "volume_usd", "traders"):
        e.append(day_over_day(column, "activity_date", 10, scope))
    return [spec]
