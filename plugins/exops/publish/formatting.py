"""How numbers look in mails and reports, with small user counts suppressed, and how a change
is judged: its direction, and whether that direction is good news for the KPI."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Literal

SMALL_COUNT = 5  # user counts below this are shown as "<5" (re-identification risk)
# a change smaller than this (in percent) is shown as steady: daily noise, not news
STEADY_PERCENT = 1.0

Better = Literal["up", "down"] | None  # which direction of a KPI is good news (None: neither)
Tone = Literal["good", "bad", "neutral", "steady"]


def suppressed(value: object, user_count: bool) -> object:
    """``"<5"`` for a user count of 1-4, else the value itself."""
    if user_count and value is not None and not isinstance(value, str):
        if 0 < float(value) < SMALL_COUNT:
            return f"<{SMALL_COUNT}"
    return value


def is_suppressed(value: object, user_count: bool) -> bool:
    return isinstance(suppressed(value, user_count), str) and not isinstance(value, str)


def number(value: object, user_count: bool = False, digits: int = 2) -> str:
    value = suppressed(value, user_count)
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        # sums of counts come back as whole numerics: show them as counts, not as 4.00
        value = int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            return "–"
        if value.is_integer() or abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:,.{max(digits, 4) if abs(value) < 1 else digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def finite(value: object) -> float | None:
    """The value as a float, or None for none, text, infinity and NaN."""
    if value is None or isinstance(value, str | bool):
        return None
    v = float(value)
    return None if math.isinf(v) or math.isnan(v) else v


def percent(value: object, digits: int = 1) -> str:
    """A ratio as a percentage: 0.2 -> ``20.0%``."""
    v = finite(value)
    return "–" if v is None else f"{v * 100:.{digits}f}%"


def compact(value: object, unit: str = "count", user_count: bool = False) -> str:
    """A headline figure short enough for a phone: ``$412.3M``, ``12,345``, ``20.0%``."""
    shown = suppressed(value, user_count)
    if isinstance(shown, str):
        return shown
    if unit == "ratio":
        return percent(value)
    v = finite(value)
    if v is None:
        return "–"
    sign, v = ("-" if v < 0 else ""), abs(v)
    prefix = "$" if unit == "usd" else ""
    # (from, unit, suffix): whole numbers up to 99,999 stay exact; 999,500 is 1.0M, not 1000k
    tiers = ((999.5e9, 1e12, "T"), (999.5e6, 1e9, "B"), (999.5e3, 1e6, "M"), (1e5, 1e3, "k"))
    for start, size, suffix in tiers:
        if v >= start:
            scaled = v / size
            text = f"{scaled:.1f}" if scaled < 100 else f"{scaled:.0f}"
            return f"{sign}{prefix}{text}{suffix}"
    if unit == "usd" and v < 100 and not v.is_integer():
        return f"{sign}{prefix}{v:,.2f}"
    return f"{sign}{prefix}{v:,.0f}"


def percent_change(value: object, baseline: object) -> float | None:
    if value is None or baseline is None:
        return None
    b = float(baseline)
    if b == 0:
        return None
    return (float(value) - b) / abs(b) * 100


def signed_percent(change: float | None) -> str:
    return "–" if change is None else f"{change:+.1f}%"


def tone(change: float | None, better: Better, steady: float = STEADY_PERCENT) -> Tone:
    """What a change means: good or bad news by the KPI's ``better`` direction, neutral when
    neither direction is news in itself, steady when it is within ``steady`` percent."""
    if change is None or abs(change) < steady:
        return "steady"
    if better is None:
        return "neutral"
    return "good" if (change > 0) == (better == "up") else "bad"


def arrow(change: float | None) -> str:
    if change is None or change == 0:
        return ""
    return "▲" if change > 0 else "▼"
