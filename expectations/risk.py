"""risk_alerts."""

from exops.quality.builders import in_set, mart_suite
from exops.quality.catalogue import SEGMENT_ENUMS, mart


def suites(as_of, tables):
    alerts = mart_suite(mart("risk_alerts"), as_of)
    alerts.expectations.append(in_set("alert_type", SEGMENT_ENUMS["alert_type"]))
    alerts.expectations.append(in_set("severity", SEGMENT_ENUMS["severity"]))
    return [alerts]
