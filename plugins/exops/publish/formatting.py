"""How numbers look in mails and reports, with small user counts suppressed."""

from __future__ import annotations

import math
from decimal import Decimal

SMALL_COUNT = 5  # user counts below this are shown as "<5" (re-identification risk)


def suppressed(value: object, user_count: bool) -> object:
    """``"<5"`` for a user count of 1-4, else the value itself."""
    if user_count and value is not None and not isinstance(value, str):
        if 0 < float(value) < SMALL_COUNT:
            return f"<{SMALL_COUNT}"
    return value


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


def percent_change(value: object, baseline: object) -> float | None:
    if value is None or baseline is None:
        return None
    b = float(baseline)
    if b == 0:
        return None
    return (float(value) - b) / abs(b) * 100


def signed_percent(change: float | None) -> str:
    return "–" if change is None else f"{change:+.1f}%"
