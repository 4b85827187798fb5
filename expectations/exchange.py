"""exchange_daily_kpis."""

from exops.quality.builders import mart_suite
from exops.quality.catalogue import mart


def suites(as_of, tables):
    spec = mart_suite(mart("exchange_daily_kpis"), as_of)
    return [spec]
