"""KPI alert rules: ``config/alert_rules.yaml``, validated on load.

A rule reads one metric of one mart (both from the whitelist in
:mod:`exops.marts`, never free SQL), optionally filtered to a segment and split
into one series per value of some segment columns, and fires on a condition:

- ``threshold``: the value is above or below a fixed number;
- ``change``: the value moved by at least ``percent`` % against the previous period
  (``compared_to: previous``) or the same day a week earlier (``compared_to: week``);
- ``anomaly``: the value is ``z`` robust deviations from the baseline of the trailing
  ``window`` points (only the same weekday with ``seasonality: weekday``) and differs from
  it by at least ``min_relative_change`` (so a flat series never alerts). The baseline is
  the median, its spread the MAD scaled by 1.4826 (a standard deviation for normal data):
  one outage or spike among the points moves neither, where it would move a mean and a
  standard deviation enough to hide the next one. The tested day and the days of known
  incidents (``config/known_incidents.yaml``) are never part of a baseline.

Every rule may also set (defaults in brackets, see ``config/alert_rules.yaml``):

- ``min_abs_change`` [0]: the value must differ from its baseline by at least this much,
  in the metric's unit (USD, users, points of NPS), however large the relative change;
- ``min_sample`` [none]: ``{metric: <a metric of the same mart>, at_least: N}``: a
  segment and day whose sample (e.g. NPS ``responses``, ``traders``) is below N is not
  evaluated, and the report lists it as such;
- ``cooldown_days`` [0]: the rule fires for a segment only if its condition did not
  already hold for that segment on any of the previous ``cooldown_days`` days (a level
  shift, a risk alert type that keeps coming, is news once, not every day until the
  baseline catches up); decided from the data alone, so a backtest and a live run agree;
- ``deliver`` [digest]: ``digest`` (the audience's one email of the day) or ``immediate``
  (an email of its own at once: for critical risk alerts).

Every error names the file, the line, the rule and the field, and what is allowed instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from exops.marts import (
    BOOLEAN_SEGMENTS,
    INTEGER_SEGMENTS,
    MART_BY_NAME,
    SEGMENT_ENUMS,
)
from exops.settings import PROJECT_ROOT

DEFAULT_RULES_PATH = PROJECT_ROOT / "config" / "alert_rules.yaml"
AUDIENCE_PATTERN = r"^[a-z][a-z0-9_]*$"
RULE_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"

Direction = Literal["drop", "rise", "any"]
SegmentValue = str | int | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Threshold(_Strict):
    type: Literal["threshold"]
    above: float | None = None
    below: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Threshold:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of 'above' or 'below'")
        return self


class Change(_Strict):
    type: Literal["change"]
    compared_to: Literal["previous", "week"] = "previous"
    direction: Direction = "drop"
    percent: float = Field(gt=0)


class Anomaly(_Strict):
    type: Literal["anomaly"]
    window: int = Field(default=28, ge=4, le=366)
    z: float = Field(default=3.0, gt=0)
    seasonality: Literal["none", "weekday"] = "none"
    min_relative_change: float = Field(default=0.1, ge=0)
    min_points: int | None = Field(default=None, ge=3)
    direction: Direction = "any"


class MinSample(_Strict):
    metric: str
    at_least: float = Field(gt=0)


Condition = Annotated[Threshold | Change | Anomaly, Field(discriminator="type")]


class Rule(_Strict):
    name: str = Field(pattern=RULE_NAME_PATTERN)
    description: str = ""
    mart: str
    metric: str
    where: dict[str, SegmentValue] = Field(default_factory=dict)
    by: list[str] = Field(default_factory=list)
    condition: Condition
    lookback_days: int = Field(default=0, ge=0, le=366)
    severity: Literal["warning", "critical"] = "warning"
    recipients: list[Annotated[str, Field(pattern=AUDIENCE_PATTERN)]] = Field(min_length=1)
    min_abs_change: float = Field(default=0, ge=0)
    min_sample: MinSample | None = None
    deliver: Literal["digest", "immediate"] = "digest"
    cooldown_days: int = Field(default=0, ge=0, le=366)


class RuleFile(_Strict):
    rules: list[Rule]


@dataclass(frozen=True)
class RuleError:
    path: Path
    line: int | None
    rule_index: int | None  # 1-based, as a reader counts
    rule_name: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        parts = [where]
        if self.rule_index is not None:
            parts.append(
                f"rule #{self.rule_index}" + (f" {self.rule_name!r}" if self.rule_name else "")
            )
        if self.field:
            parts.append(f"field {self.field!r}")
        return ": ".join(parts) + f": {self.message}"


class RuleFileError(ValueError):
    def __init__(self, errors: list[RuleError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def load_rules(path: Path | str | None = None) -> list[Rule]:
    """The rules of ``path`` (default config/alert_rules.yaml); raises RuleFileError."""
    path = Path(path) if path is not None else DEFAULT_RULES_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleFileError(
            [RuleError(path, None, None, None, None, f"cannot read the file: {exc.strerror}")]
        ) from None
    return parse_rules(text, path)


def parse_rules(text: str, path: Path | str = "<string>") -> list[Rule]:
    path = Path(path)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        col = f", column {mark.column + 1}" if mark else ""
        raise RuleFileError(
            [RuleError(path, line, None, None, None, f"not valid YAML{col}: {exc.problem}")]
        ) from None
    if not isinstance(data, dict) or "rules" not in data:
        raise RuleFileError(
            [RuleError(path, None, None, None, None, "expected a mapping with a 'rules:' list")]
        )
    raw_rules = data.get("rules")
    try:
        parsed = RuleFile.model_validate(data)
    except ValidationError as exc:
        raise RuleFileError(_pydantic_errors(exc, path, node, raw_rules)) from None
    errors = _semantic_errors(parsed.rules, path, node)
    if errors:
        raise RuleFileError(errors)
    return parsed.rules


def _rule_name(raw_rules: Any, index: int) -> str | None:
    if isinstance(raw_rules, list) and index < len(raw_rules):
        item = raw_rules[index]
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            return item["name"]
    return None


def _line(node: yaml.Node | None, path: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at ``path`` (or of its deepest existing ancestor)."""
    best = node.start_mark.line + 1 if node is not None else None
    for step in path:
        if isinstance(node, yaml.MappingNode):
            found = None
            for key, value in node.value:
                if key.value == step:
                    found = (key, value)
                    break
            if found is None:
                return best
            best = found[0].start_mark.line + 1
            node = found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            if step >= len(node.value):
                return best
            node = node.value[step]
            best = node.start_mark.line + 1
        else:
            return best
    return best


_TAGS = {"threshold", "change", "anomaly"}


def _pydantic_errors(
    exc: ValidationError, path: Path, node: yaml.Node | None, raw_rules: Any
) -> list[RuleError]:
    out: list[RuleError] = []
    for err in exc.errors():
        loc = list(err["loc"])
        if err["type"] == "union_tag_invalid":
            message = "'type' must be one of: threshold, change, anomaly"
            loc.append("type")
        elif err["type"] == "union_tag_not_found":
            message = "missing 'type' (one of: threshold, change, anomaly)"
            loc.append("type")
        else:
            message = err["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
            if (
                err["type"] != "missing"
                and "input" in err
                and not isinstance(err["input"], dict | list)
            ):
                message += f" (got {err['input']!r})"
        if len(loc) >= 3 and loc[2] == "condition" and len(loc) > 3 and loc[3] in _TAGS:
            del loc[3]
        yaml_path = tuple(loc)
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            index = loc[1]
            field = ".".join(str(p) for p in loc[2:]) or None
            out.append(
                RuleError(
                    path,
                    _line(node, yaml_path),
                    index + 1,
                    _rule_name(raw_rules, index),
                    field,
                    message,
                )
            )
        else:
            field = ".".join(str(p) for p in loc) or None
            out.append(RuleError(path, _line(node, yaml_path), None, None, field, message))
    return out


def _semantic_errors(rules: list[Rule], path: Path, node: yaml.Node | None) -> list[RuleError]:
    out: list[RuleError] = []
    seen: dict[str, int] = {}

    def err(i: int, rule: Rule, loc: tuple[Any, ...], message: str) -> None:
        field = ".".join(str(p) for p in loc)
        line = _line(node, ("rules", i, *loc))
        out.append(RuleError(path, line, i + 1, rule.name, field, message))

    for i, rule in enumerate(rules):
        if rule.name in seen:
            err(i, rule, ("name",), f"duplicate rule name; rule #{seen[rule.name]} has it too")
        else:
            seen[rule.name] = i + 1
        mart = MART_BY_NAME.get(rule.mart)
        if mart is None or not mart.published:
            allowed = ", ".join(m.name for m in MART_BY_NAME.values() if m.published)
            err(i, rule, ("mart",), f"unknown mart {rule.mart!r}; choose one of: {allowed}")
            continue
        if rule.metric not in mart.metric_names:
            err(
                i,
                rule,
                ("metric",),
                f"{rule.metric!r} is not a metric of {mart.name}; "
                f"choose one of: {', '.join(mart.metric_names)}",
            )
        if rule.min_sample is not None and rule.min_sample.metric not in mart.metric_names:
            err(
                i,
                rule,
                ("min_sample", "metric"),
                f"{rule.min_sample.metric!r} is not a metric of {mart.name}; "
                f"choose one of: {', '.join(mart.metric_names)}",
            )
        allowed_segments = ", ".join(mart.segments) or "(none: this mart has no segments)"
        for column, value in rule.where.items():
            if column not in mart.segments:
                err(
                    i,
                    rule,
                    ("where", column),
                    f"{column!r} is not a segment column of {mart.name}; "
                    f"choose from: {allowed_segments}",
                )
                continue
            problem = _segment_value_problem(column, value)
            if problem:
                err(i, rule, ("where", column), problem)
        for j, column in enumerate(rule.by):
            if column not in mart.segments:
                err(
                    i,
                    rule,
                    ("by", j),
                    f"{column!r} is not a segment column of {mart.name}; "
                    f"choose from: {allowed_segments}",
                )
            elif column in rule.where:
                err(i, rule, ("by", j), f"{column!r} is already fixed by 'where'")
        cond = rule.condition
        if isinstance(cond, Change | Anomaly) and mart.period == "none":
            err(
                i,
                rule,
                ("condition", "type"),
                f"{mart.name} has no time series (one row per {mart.keys[0]}); "
                "only 'threshold' rules apply",
            )
        if isinstance(cond, Change) and cond.compared_to == "week" and mart.period != "day":
            err(
                i,
                rule,
                ("condition", "compared_to"),
                f"'week' needs a daily mart; {mart.name} is per {mart.period}: use 'previous'",
            )
        if isinstance(cond, Anomaly) and cond.seasonality == "weekday" and mart.period != "day":
            err(
                i,
                rule,
                ("condition", "seasonality"),
                f"'weekday' needs a daily mart; {mart.name} is per {mart.period}",
            )
    return out


def _segment_value_problem(column: str, value: SegmentValue) -> str | None:
    if column in BOOLEAN_SEGMENTS:
        return None if isinstance(value, bool) else f"must be true or false (got {value!r})"
    if column in INTEGER_SEGMENTS:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer (got {value!r})"
        return None
    if not isinstance(value, str):
        return f"must be a string (got {value!r})"
    allowed = SEGMENT_ENUMS.get(column)
    if allowed and value not in allowed:
        return f"{value!r} is not a {column}; choose one of: {', '.join(allowed)}"
    if not re.fullmatch(r"[\w.\-|:/ ]{1,100}", value):
        return f"{value!r} contains characters no {column} has"
    return None
