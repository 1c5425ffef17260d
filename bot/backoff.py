"""Retry delays: capped exponential backoff with full jitter.

Full jitter spreads retries of many workers over the whole window, so a Graph outage does not end with
every queued reply hitting Meta in the same second (AWS Builders' Library, "Timeouts, retries and backoff
with jitter").
"""

from __future__ import annotations

import random
from collections.abc import Callable

MAX_EXPONENT = 64


def backoff_bound(attempt: int, *, base: float = 2.0, cap: float = 600.0) -> float:
    """Upper bound of the delay for a retry attempt: ``min(cap, base * 2**attempt)``."""
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    return min(cap, base * 2.0 ** min(attempt, MAX_EXPONENT))


def backoff_delay(
    attempt: int, *, base: float = 2.0, cap: float = 600.0, rng: Callable[[], float] = random.random
) -> float:
    """Seconds before retry ``attempt`` (0 = first retry): uniform in ``[0, min(cap, base * 2**attempt)]``."""
    return rng() * backoff_bound(attempt, base=base, cap=cap)
