"""exops.metrics without a warehouse: validity declarations, group-by names, --where."""

from __future__ import annotations

import pytest

from exops.metrics import (
    GroupBy,
    MetricInfo,
    MetricsError,
    QueryRefused,
    Validity,
    check_validity,
    resolve_group_by,
    where_to_metricflow,
)


def _metric(name: str, **valid) -> MetricInfo:
    return MetricInfo(
        name, name, f"{name} described.", "simple", "m", Validity.from_meta(name, {"valid": valid})
    )


VOLUME = _metric(
    "product_volume_usd",
    grains=["day", "month", "total"],
    dimensions=["product__product_id", "product__product_line"],
)
TRADERS = _metric(
    "product_traders",
    grains=["day"],
    dimensions=["product__product_id", "product__product_line"],
    required=["product__product_id"],
)


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        (None, "missing; every metric declares where it is valid"),
        ({"valid": {"grains": []}}, "grains must be a non-empty list"),
        ({"valid": {"grains": ["fortnight"]}}, "got fortnight"),
        ({"valid": {"grains": ["day"], "dimension": ["x"]}}, "unknown key(s) dimension"),
        ({"valid": {"grains": ["day"], "required": ["a__b"]}}, "required dimensions must be among"),
    ],
)
def test_a_bad_declaration_names_the_metric_and_the_fix(meta, message) -> None:
    with pytest.raises(MetricsError) as exc:
        Validity.from_meta("volume_usd", meta)
    assert "metric volume_usd (dbt_project/models/semantic/, config.meta.valid)" in str(exc.value)
    assert message in str(exc.value)


def test_group_by_names_resolve_to_qualified_dimensions_and_one_grain() -> None:
    assert resolve_group_by([VOLUME], ["month", "product_line"]) == GroupBy(
        "month", ("product__product_line",)
    )
    assert resolve_group_by([VOLUME, TRADERS], ["metric_time", "product__product_id"]) == GroupBy(
        "day", ("product__product_id",)
    )
    assert resolve_group_by([VOLUME], ["metric_time__month"]).names() == ["metric_time__month"]
    with pytest.raises(QueryRefused, match="one time grain at a time"):
        resolve_group_by([VOLUME], ["day", "month"])
    with pytest.raises(QueryRefused, match="tier is not a dimension of product_volume_usd"):
        resolve_group_by([VOLUME], ["tier"])


def test_validity_refuses_other_grains_missing_and_foreign_dimensions() -> None:
    check_validity([VOLUME], GroupBy(None, ("product__product_line",)))
    check_validity([TRADERS], GroupBy("day", ("product__product_id", "product__product_line")))
    with pytest.raises(
        QueryRefused, match="product_traders cannot be queried by metric_time__month"
    ):
        check_validity([TRADERS], GroupBy("month", ("product__product_id",)))
    with pytest.raises(QueryRefused, match="cannot be queried without a time group-by"):
        check_validity([TRADERS], GroupBy(None, ("product__product_id",)))
    with pytest.raises(QueryRefused, match="must be grouped by product__product_id"):
        check_validity([TRADERS], GroupBy("day", ("product__product_line",)))
    with pytest.raises(QueryRefused, match="cannot be grouped by user_tier__tier"):
        check_validity([VOLUME], GroupBy("day", ("user_tier__tier",)))


def test_where_in_plain_names_becomes_metricflow_filters() -> None:
    assert where_to_metricflow(
        "product_line = 'spot' and metric_time__month >= '2026-01-01'", [VOLUME]
    ) == (
        "{{ Dimension('product__product_line') }} = 'spot' and"
        " {{ TimeDimension('metric_time', 'month') }} >= '2026-01-01'"
    )
    # quoted text is left alone, and so is a filter already in MetricFlow's syntax
    assert where_to_metricflow("product__product_id = 'product_line'", [VOLUME]) == (
        "{{ Dimension('product__product_id') }} = 'product_line'"
    )
    jinja = "{{ Dimension('product__product_line') }} = 'spot'"
    assert where_to_metricflow(jinja, [VOLUME]) == jinja
