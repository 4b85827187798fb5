"""Source health's pure parts: the robust volume judgment, the configuration, the check
instant, lineage from a manifest, and the templates' escaping."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from exops.publish import provisional
from exops.quality import source_health as sh
from exops.templating import render

V = sh.Volume(weeks=6, min_weeks=3, min_median_rows=20, z=4, warn_relative_change=0.5,
              error_relative_change=0.8)  # fmt: skip


def test_usual_weekday_swings_are_ok() -> None:
    status, why, median = sh.robust_volume(950, [1000, 1100, 980, 1020, 900, 1050], V)
    assert status == "ok" and median == 1010
    assert "median of 1010" in why


def test_a_half_delivery_warns_and_a_missing_bulk_errors() -> None:
    history = [1000, 1100, 980, 1020, 900, 1050]
    assert sh.robust_volume(450, history, V)[0] == "warn"
    assert sh.robust_volume(100, history, V)[0] == "error"
    assert sh.robust_volume(3000, history, V)[0] == "error"  # a doubled delivery too


def test_one_outlier_week_does_not_move_the_baseline() -> None:
    # a mean/stdev baseline would be dragged by the 5000; the median and MAD are not
    history = [1000, 1010, 990, 5000, 1005, 995]
    status, why, median = sh.robust_volume(150, history, V)
    assert median == 1002.5 and status == "error"


def test_too_little_history_or_too_small_an_entity_is_not_judged() -> None:
    assert sh.robust_volume(0, [1000, 1000], V)[0] == "ok"
    status, why, _ = sh.robust_volume(0, [3, 5, 4, 6], V)
    assert status == "ok" and "not judged" in why


def test_a_constant_history_flags_any_big_change() -> None:
    assert sh.robust_volume(100, [100, 100, 100], V)[0] == "ok"
    assert sh.robust_volume(10, [100, 100, 100], V)[0] == "error"


def test_the_shipped_config_loads_with_overrides() -> None:
    config = sh.load_config()
    crm_users = sh.ENTITIES[[f"{e.source}/{e.name}" for e in sh.ENTITIES].index("crm/users")]
    products = sh.ENTITIES[[f"{e.source}/{e.name}" for e in sh.ENTITIES].index("exchange/products")]
    assert config.expectation(crm_users).freshness.due_hour == 4
    assert config.expectation(products).volume.warn_relative_change == 0.3
    assert config.expectation(products).freshness.due_hour == 2  # the source's override
    assert config.holds("warn") and config.holds("error") and not config.holds("ok")


def test_a_bad_config_names_the_file_and_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "h.yaml"
    bad.write_text("sources:\n  crm/userz: {freshness: {due_hour: 3}}\n")
    with pytest.raises(sh.HealthConfigError, match=r"h\.yaml: sources\.crm/userz: no such"):
        sh.load_config(bad)
    bad.write_text("defaults:\n  volume: {weeks: 0}\n")
    with pytest.raises(sh.HealthConfigError, match=r"defaults\.volume\.weeks"):
        sh.load_config(bad)
    bad.write_text("sources:\n  crm: {freshness: {due_hours: 3}}\n")
    with pytest.raises(sh.HealthConfigError, match=r"due_hours"):
        sh.load_config(bad)


def test_the_check_instant_comes_from_the_as_of_never_the_clock() -> None:
    config = sh.load_config()
    assert sh.check_instant(date(2024, 2, 28), config) == datetime(2024, 2, 29, 8, tzinfo=UTC)


def test_marts_are_found_through_every_model_between() -> None:
    manifest = {
        "sources": {
            "source.p.crm.users": {"source_name": "crm", "name": "users"},
            "source.p.feedback.tickets": {"source_name": "feedback", "name": "tickets"},
        },
        "nodes": {
            "model.p.stg_users": {"resource_type": "model", "name": "stg_users", "schema": "s"},
            "model.p.int_u": {"resource_type": "model", "name": "int_u", "schema": "i"},
            "model.p.kpis": {"resource_type": "model", "name": "kpis", "schema": "marts"},
            "model.p.fb": {"resource_type": "model", "name": "fb", "schema": "marts"},
            "test.p.t": {"resource_type": "test", "name": "t", "schema": "marts"},
        },
        "child_map": {
            "source.p.crm.users": ["model.p.stg_users", "test.p.t"],
            "model.p.stg_users": ["model.p.int_u"],
            "model.p.int_u": ["model.p.kpis", "model.p.int_u"],
            "source.p.feedback.tickets": ["model.p.fb"],
        },
    }
    assert sh.marts_by_source(manifest) == {"crm/users": ("kpis",), "feedback/tickets": ("fb",)}


def test_sections_are_named_for_the_marts_they_read() -> None:
    assert provisional.affected_sections({"exchange_daily_kpis"}) == ["headline_kpis", "charts"]
    assert provisional.affected_sections({"dormant_recall_targets"}) == []


def test_the_report_sections_map_is_the_report_s_own() -> None:
    source = (Path(provisional.__file__).parent / "report.py").read_text()
    for name, marts in provisional.REPORT_SECTIONS.items():
        if name != "charts":
            assert f'"{name}"' in source, name
        for mart in marts:
            assert f"marts.{mart}" in source, mart


def test_the_banner_escapes_what_comes_from_data() -> None:
    p = provisional.SourceProblem(
        "crm", "users", "schema", "warn", "columns: <script>x</script>", True, ("m",)
    )
    html = render(
        "_source_health_banner.html.j2", day="2026-01-01", sources=[p], marts=["m"], sections=[]
    )
    assert "<script>" not in html and "&lt;script&gt;" in html
    text = render(
        "_source_health_banner.txt.j2", day="2026-01-01", sources=[p], marts=["m"], sections=[]
    )
    assert "<script>x</script>" in text  # plain text is not HTML
