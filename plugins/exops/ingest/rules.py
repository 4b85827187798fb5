"""Rules that involve more than one field of a row (checked once every field is valid)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from exops.contract import Entity

from .values import Invalid

RowRule = Callable[[Mapping[str, Any]], None]  # raises Invalid

SURVEY_SCORE_RANGES = {"nps": (0, 10), "csat": (1, 5)}


def survey_score_in_range(row: Mapping[str, Any]) -> None:
    """``score`` is 0-10 for an ``nps`` survey and 1-5 for a ``csat`` one."""
    survey = row["survey"]
    low, high = SURVEY_SCORE_RANGES[survey]
    score = int(row["score"])
    if not low <= score <= high:
        raise Invalid(
            f"score: {score} is not between {low} and {high} for survey '{survey}'", "score"
        )


ROW_RULES: dict[tuple[str, str], tuple[RowRule, ...]] = {
    ("feedback", "survey_responses"): (survey_score_in_range,),
}


def row_rules(entity: Entity) -> tuple[RowRule, ...]:
    return ROW_RULES.get((entity.source, entity.name), ())
