"""The published marts of shared/spec/KPIS.md as data: grain, keys, columns and their rules.

Quality suites, alert-rule validation and the report all read the marts through this one
description, so a column an alert rule may name is exactly a column the spec promises.
Column rules live in the models' YAML: keys and enumerations as dbt data tests, nulls and
ranges as constraints of the marts' enforced contracts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from exops.contract import (
    CAMPAIGN_TYPES,
    CHANNELS,
    PRODUCT_LINES,
    TICKET_CATEGORIES,
    TICKET_CHANNELS,
    TIERS,
)

Period = Literal["day", "week", "month", "none"]


@dataclass(frozen=True)
class Metric:
    """A number that can be read per day (or week, month) over any segment of a mart.

    ``sql`` aggregates the mart's rows of one date and segment into one value; ratios are
    recomputed from their parts so that summing over segments stays correct.
    """

    name: str
    sql: str
    user_count: bool = False  # a number of users: small counts are suppressed in reports


@dataclass(frozen=True)
class Mart:
    name: str
    date_column: str
    period: Period
    keys: tuple[str, ...]
    segments: tuple[str, ...]  # columns an alert rule may filter or split on
    metrics: tuple[Metric, ...]
    dense_daily: bool = False  # one row (per fixed segment set) for every day up to as-of
    fresh_to_as_of: bool = False  # the date column reaches the as-of date
    published: bool = True  # goes into reports and alerts (dormant_recall_targets: no)

    @property
    def qualified(self) -> str:
        return f"marts.{self.name}"

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics)


def _sum(name: str, user_count: bool = False) -> Metric:
    return Metric(name, f"sum({name})", user_count)


def _ratio(name: str, num: str, den: str, scale: str = "") -> Metric:
    return Metric(name, f"{scale}sum({num})::numeric / nullif(sum({den}), 0)")


MARTS: tuple[Mart, ...] = (
    Mart(
        "exchange_daily_kpis",
        "activity_date",
        "day",
        keys=("activity_date",),
        segments=(),
        metrics=(
            _sum("trade_count"),
            _sum("volume_usd"),
            _sum("fees_usd"),
            _sum("traders", True),
            _sum("active_users", True),
            _sum("wau", True),
            _sum("mau", True),
            _ratio("stickiness", "active_users", "mau"),
            _sum("registrations", True),
            _sum("new_traders", True),
            _sum("deposits_usd"),
            _sum("withdrawals_usd"),
        ),
        dense_daily=True,
        fresh_to_as_of=True,
    ),
    Mart(
        "product_daily_kpis",
        "activity_date",
        "day",
        keys=("product_id", "activity_date"),
        segments=("product_id", "product_line", "lifecycle_stage"),
        metrics=(
            _sum("trade_count"),
            _sum("volume_usd"),
            _sum("fees_usd"),
            _sum("traders", True),
            _sum("new_traders", True),
            _sum("subscribe_usd"),
            _sum("redeem_usd"),
            _sum("subscribers", True),
        ),
        fresh_to_as_of=True,
    ),
    Mart(
        "product_stage_kpis",
        "stage_start_date",
        "none",
        keys=("product_id", "stage_start_date"),
        segments=("product_id", "product_line", "lifecycle_stage", "is_current"),
        metrics=(
            _sum("days_in_stage"),
            _sum("volume_usd"),
            _sum("avg_daily_volume_usd"),
            _sum("avg_daily_traders"),
            _sum("new_traders", True),
            _sum("fees_usd"),
        ),
    ),
    Mart(
        "user_tier_daily",
        "activity_date",
        "day",
        keys=("activity_date", "tier"),
        segments=("tier",),
        metrics=(
            _sum("users", True),
            _sum("active_users", True),
            _sum("volume_usd"),
            _sum("fees_usd"),
            _sum("net_deposits_usd"),
        ),
        dense_daily=True,
        fresh_to_as_of=True,
    ),
    Mart(
        "user_tier_transitions",
        "activity_date",
        "day",
        keys=("activity_date", "from_tier", "to_tier"),
        segments=("from_tier", "to_tier"),
        metrics=(_sum("users", True),),
    ),
    Mart(
        "retention_cohorts",
        "cohort_week",
        "week",
        keys=("cohort_week", "acquisition_channel", "week_number"),
        segments=("acquisition_channel", "week_number"),
        metrics=(
            _sum("cohort_users", True),
            _sum("retained_users", True),
            _ratio("retention_rate", "retained_users", "cohort_users"),
        ),
    ),
    Mart(
        "acquisition_funnel",
        "registration_date",
        "day",
        keys=("registration_date", "acquisition_channel"),
        segments=("acquisition_channel", "is_complete"),
        metrics=(
            _sum("registered_users", True),
            _sum("kyc_approved_users", True),
            _sum("deposited_users", True),
            _sum("traded_users", True),
            _ratio("kyc_rate", "kyc_approved_users", "registered_users"),
            _ratio("deposit_rate", "deposited_users", "registered_users"),
            _ratio("trade_rate", "traded_users", "registered_users"),
        ),
        dense_daily=True,
        fresh_to_as_of=True,
    ),
    Mart(
        "channel_performance",
        "month",
        "month",
        keys=("month", "acquisition_channel"),
        segments=("acquisition_channel",),
        metrics=(
            _sum("spend_usd"),
            _sum("registered_users", True),
            _sum("new_traders", True),
            _ratio("cac_usd", "spend_usd", "new_traders"),
        ),
    ),
    Mart(
        "cohort_ltv",
        "cohort_month",
        "month",
        keys=("cohort_month", "acquisition_channel", "months_since_registration"),
        segments=("acquisition_channel", "months_since_registration", "is_complete"),
        metrics=(
            _sum("cohort_users", True),
            _sum("cumulative_fees_usd"),
            _ratio("ltv_usd", "cumulative_fees_usd", "cohort_users"),
        ),
    ),
    Mart(
        "campaign_performance",
        "end_date",
        "none",
        keys=("campaign_id",),
        segments=("campaign_id", "campaign_type", "product_line", "is_complete"),
        metrics=(
            _sum("participants", True),
            _sum("controls", True),
            _sum("incremental_volume_usd"),
            _sum("incremental_fees_usd"),
            _sum("cost_usd"),
            Metric(
                "roi",
                "(sum(incremental_fees_usd) - sum(cost_usd)) / nullif(sum(cost_usd), 0)",
            ),
        ),
    ),
    Mart(
        "feedback_daily",
        "created_date",
        "day",
        keys=("created_date", "category", "channel"),
        segments=("category", "channel"),
        metrics=(
            _sum("tickets"),
            _sum("resolved_tickets"),
            _sum("resolved_within_24h"),
            _sum("csat_responses"),
            Metric(
                "avg_csat",
                "sum(avg_csat * csat_responses) / nullif(sum(csat_responses), 0)",
            ),
        ),
        dense_daily=True,
        fresh_to_as_of=True,
    ),
    Mart(
        "nps_weekly",
        "week_start",
        "week",
        keys=("week_start", "product_line"),
        segments=("product_line",),
        metrics=(
            _sum("responses"),
            _sum("promoters"),
            _sum("passives"),
            _sum("detractors"),
            _ratio("nps", "promoters - detractors", "responses", scale="100 * "),
        ),
    ),
    Mart(
        "risk_alerts",
        "alert_date",
        "day",
        keys=("alert_type", "alert_date", "subject_id"),
        segments=("alert_type", "severity"),
        metrics=(Metric("alerts", "count(*)"), _sum("metric_value")),
    ),
    Mart(
        "dormant_recall_targets",
        "registered_date",
        "none",
        keys=("user_id",),
        segments=(),
        metrics=(),
        published=False,
    ),
)

MART_BY_NAME: dict[str, Mart] = {m.name: m for m in MARTS}

# Segment values are free strings except these, which the spec enumerates.
SEGMENT_ENUMS: dict[str, tuple[str, ...]] = {
    "tier": TIERS,
    "from_tier": TIERS,
    "to_tier": TIERS,
    "product_line": (*PRODUCT_LINES, "all"),
    "acquisition_channel": (*CHANNELS, "all"),
    "category": TICKET_CATEGORIES,
    "channel": TICKET_CHANNELS,
    "campaign_type": CAMPAIGN_TYPES,
    "severity": ("high", "medium", "low"),
    "lifecycle_stage": (
        "launch_preparation",
        "cold_start",
        "daily_operations",
        "iteration",
        "delisting",
        "delisted",
    ),
    "alert_type": (
        "self_trade",
        "linked_account_trade",
        "trade_before_kyc",
        "restricted_country_reward",
        "volume_spike",
        "referral_ring",
    ),
}

BOOLEAN_SEGMENTS = frozenset({"is_complete", "is_current"})
INTEGER_SEGMENTS = frozenset({"week_number", "months_since_registration"})


def mart(name: str) -> Mart:
    try:
        return MART_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown mart {name!r}; known: {', '.join(MART_BY_NAME)}") from None
