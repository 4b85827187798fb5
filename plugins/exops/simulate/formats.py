"""Value formats of the landing contract: ISO timestamps with offsets and exact decimals."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import numpy as np

DAY = 86_400
_EPOCH = datetime(1970, 1, 1)

# Most systems write UTC with `Z`; some write the same instant in a local offset.
OFFSET_SUFFIXES = ("Z", "+08:00", "-05:00")
OFFSET_SECONDS = (0, 8 * 3600, -5 * 3600)
OFFSET_WEIGHTS = (0.84, 0.08, 0.08)
_OFFSET_MS = np.array(OFFSET_SECONDS, dtype=np.int64) * 1000


def epoch_day(d: date) -> int:
    """Seconds since the Unix epoch at 00:00:00 UTC of ``d``."""
    return (d - date(1970, 1, 1)).days * DAY


def pick_offset(rnd: random.Random) -> int:
    u = rnd.random()
    return 0 if u < OFFSET_WEIGHTS[0] else (1 if u < OFFSET_WEIGHTS[0] + OFFSET_WEIGHTS[1] else 2)


def iso(sec: int, offset: int = 0) -> str:
    """ISO 8601 text of the instant ``sec`` (Unix seconds), written in the given offset."""
    local = _EPOCH + timedelta(seconds=sec + OFFSET_SECONDS[offset])
    return local.isoformat() + OFFSET_SUFFIXES[offset]


def iso_ms_list(ms: np.ndarray, offsets: np.ndarray) -> list[str]:
    """ISO 8601 texts with milliseconds for Unix-millisecond instants, vectorised."""
    local = (ms + _OFFSET_MS[offsets]).astype("datetime64[ms]")
    texts = np.datetime_as_string(local, unit="ms").tolist()
    return [t + OFFSET_SUFFIXES[o] for t, o in zip(texts, offsets.tolist(), strict=True)]


def fixed(n: int, scale: int) -> str:
    """The integer ``n`` read as a decimal with ``scale`` fractional digits."""
    if scale == 0:
        return str(n)
    sign = "-" if n < 0 else ""
    q, r = divmod(abs(n), 10**scale)
    return f"{sign}{q}.{r:0{scale}d}"


def fixed_list(values: np.ndarray, scale: int) -> list[str]:
    """``fixed`` over an int64 array."""
    if scale == 0:
        return [str(v) for v in values.tolist()]
    q, r = np.divmod(np.abs(values), 10**scale)
    pattern = "{}.{:0" + str(scale) + "d}"
    texts = [pattern.format(a, b) for a, b in zip(q.tolist(), r.tolist(), strict=True)]
    if (values < 0).any():
        for k in np.flatnonzero(values < 0).tolist():
            texts[k] = "-" + texts[k]
    return texts


def money(x: float) -> str:
    """USD amount with cents; never ``-0.00``."""
    text = f"{x:.2f}"
    return "0.00" if text == "-0.00" else text


def user_id(i: int) -> str:
    return f"u_{i + 1:06d}"
