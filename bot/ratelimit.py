"""Pacing of Graph API calls from Meta's usage headers.

Meta keeps counting calls made while a Page is throttled, and continued calls extend the block, so the client
must slow down before 100 % and stop completely once throttled. This module reads the usage headers and turns
them into a delay before the next call; it knows nothing about errors or HTTP sessions.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

BUSINESS_USAGE_HEADER = "X-Business-Use-Case-Usage"
APP_USAGE_HEADER = "X-App-Usage"
PAGE_USAGE_HEADER = "X-Page-Usage"

USAGE_FIELDS = ("call_count", "total_cputime", "total_time")
REGAIN_FIELD = "estimated_time_to_regain_access"
DEFAULT_BLOCK_SECONDS = 300.0


@dataclass(frozen=True)
class UsageSnapshot:
    """Usage read from one response: highest % per kind and the longest announced regain time."""

    levels: dict[str, float] = field(default_factory=dict)
    regain_seconds: float = 0.0

    @property
    def highest_percent(self) -> float:
        return max(self.levels.values(), default=0.0)


def _number(value: Any) -> float | None:
    """A finite, non-negative number from a header field, or None for anything else (bools, junk, NaN)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return max(float(value), 0.0)


def _load_json_object(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, str | bytes) or not raw:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _read_usage_entry(entry: Mapping[str, Any]) -> tuple[float | None, float]:
    """(highest usage % or None when no field is readable, regain time in seconds) of one usage object."""
    percents = [p for p in (_number(entry.get(name)) for name in USAGE_FIELDS) if p is not None]
    regain_minutes = _number(entry.get(REGAIN_FIELD)) or 0.0
    return (max(percents) if percents else None), regain_minutes * 60.0


def parse_usage_headers(headers: Mapping[str, Any] | None) -> UsageSnapshot:
    """Read the three usage headers; never raises, whatever the headers contain.

    Kinds are ``business:<type>`` (one per BUC type such as ``pages`` or ``messenger``, across all business
    IDs), ``app`` and ``page``.
    """
    if not headers:
        return UsageSnapshot()
    try:
        lookup = {str(name).lower(): value for name, value in headers.items()}
    except (AttributeError, TypeError):
        return UsageSnapshot()
    levels: dict[str, float] = {}
    regain_seconds = 0.0

    def record(kind: str, entry: Any) -> None:
        nonlocal regain_seconds
        if not isinstance(entry, Mapping):
            return
        percent, regain = _read_usage_entry(entry)
        regain_seconds = max(regain_seconds, regain)
        if percent is not None:
            levels[kind] = max(levels.get(kind, 0.0), percent)

    business = _load_json_object(lookup.get(BUSINESS_USAGE_HEADER.lower())) or {}
    for entries in business.values():
        for entry in entries if isinstance(entries, list) else [entries]:
            if isinstance(entry, Mapping):
                record(f"business:{entry.get('type') or 'unknown'}", entry)
    for kind, header in (("app", APP_USAGE_HEADER), ("page", PAGE_USAGE_HEADER)):
        parsed = _load_json_object(lookup.get(header.lower()))
        if parsed is not None:
            record(kind, parsed)
    return UsageSnapshot(levels=levels, regain_seconds=regain_seconds)


class UsageGovernor:
    """Shared, thread-safe pacing state for one Page (or one app token).

    Below ``slow_from_percent`` calls go out freely. From there to 100 % consecutive calls are spaced by a
    pause growing linearly up to ``max_pause_seconds``. At 100 %, on an announced regain time, or after a
    throttling error, no call goes out until the regain time (or ``default_block_seconds``) has passed.

    A reading counts until the regain time it announces, or else for ``reading_ttl_seconds``: Meta sends the
    headers with the responses, so while calls flow fresh readings replace it; a reading that no response
    renews (a throttled page, endpoints without the header) must not space calls out for ever.
    """

    def __init__(
        self,
        *,
        slow_from_percent: float = 75.0,
        max_pause_seconds: float = 30.0,
        default_block_seconds: float = DEFAULT_BLOCK_SECONDS,
        reading_ttl_seconds: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 0 <= slow_from_percent < 100:
            raise ValueError("slow_from_percent must be in [0, 100)")
        self.slow_from_percent = slow_from_percent
        self.max_pause_seconds = max_pause_seconds
        self.default_block_seconds = default_block_seconds
        self.reading_ttl_seconds = reading_ttl_seconds
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._levels: dict[str, tuple[float, float]] = {}  # kind -> (percent, valid until)
        self._blocked_until = -math.inf
        self._last_call_at = -math.inf

    def observe(self, response: Any) -> UsageSnapshot:
        """Record the usage headers of a response (anything with ``.headers``; junk is ignored)."""
        snapshot = parse_usage_headers(getattr(response, "headers", None))
        self.observe_snapshot(snapshot)
        return snapshot

    def observe_snapshot(self, snapshot: UsageSnapshot) -> None:
        """Update the per-kind levels; block when Meta says we are (or are about to be) throttled."""
        with self._lock:
            now = self._clock()
            valid_until = now + (snapshot.regain_seconds or self.reading_ttl_seconds)
            self._levels.update({kind: (percent, valid_until) for kind, percent in snapshot.levels.items()})
            if snapshot.regain_seconds > 0:
                self._block_locked(now + snapshot.regain_seconds)
            elif snapshot.highest_percent >= 100:
                self._block_locked(now + self.default_block_seconds)
        if snapshot.levels and snapshot.highest_percent >= self.slow_from_percent:
            logger.warning("Graph usage high: %s, regain in %.0f s", snapshot.levels, snapshot.regain_seconds)

    def note_throttled(self, retry_after_seconds: float | None = None) -> None:
        """A throttling error came back: stop all calls for the given time (or the default block)."""
        seconds = retry_after_seconds if retry_after_seconds and retry_after_seconds > 0 else None
        with self._lock:
            self._block_locked(self._clock() + (seconds or self.default_block_seconds))

    def _block_locked(self, until: float) -> None:
        self._blocked_until = max(self._blocked_until, until)

    def pause_for_percent(self, percent: float) -> float:
        """Spacing between calls at a given usage level (0 below the slow-down threshold)."""
        if percent < self.slow_from_percent:
            return 0.0
        share = min(percent, 100.0) - self.slow_from_percent
        return self.max_pause_seconds * share / (100.0 - self.slow_from_percent)

    @property
    def highest_percent(self) -> float:
        with self._lock:
            return self._current_percent_locked()

    def _current_percent_locked(self) -> float:
        now = self._clock()
        return max((percent for percent, valid_until in self._levels.values() if valid_until > now), default=0.0)

    def _next_allowed_locked(self) -> float:
        pause = self.pause_for_percent(self._current_percent_locked())
        return max(self._blocked_until, self._last_call_at + pause)

    def delay_before_next_call(self) -> float:
        """Seconds the next call has to wait (0 when it may go out now)."""
        with self._lock:
            return max(0.0, self._next_allowed_locked() - self._clock())

    def wait(self) -> float:
        """Reserve the next call slot and sleep until it; returns the seconds slept.

        The slot is reserved under the lock, so concurrent callers are spaced out instead of waking together.
        """
        with self._lock:
            now = self._clock()
            start = max(now, self._next_allowed_locked())
            self._last_call_at = start
        delay = start - now
        if delay > 0:
            self._sleep(delay)
        return delay
