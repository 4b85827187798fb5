"""risk_alerts (its keys and enumerations are dbt data tests): the self-trade alerts against
the priced trades."""

from exops.marts import mart
from exops.quality import reference
from exops.quality.builders import mart_suite, reconciliation


def suites(scope, tables):
    alerts = mart_suite(mart("risk_alerts"), scope)
    alerts.requires = {reference.TRADES}
    within = scope.days("alert_date")
    alerts.expectations.append(
        reconciliation(
            "self_trade alerts = users' self-trade volume per day",
            ("alert_date", "subject_id"),
            "select executed_date as alert_date, maker_user_id as subject_id,"
            f" sum(volume_usd) as metric_value from {reference.TRADES}"
            f" where is_self_trade and {scope.days('executed_date')} group by 1, 2",
            {"metric_value": 0.01},
            within,
            actual="select alert_date, subject_id, metric_value from {batch} as mart"
            f" where alert_type = 'self_trade' and {within}",
        )
    )
    return [alerts]
