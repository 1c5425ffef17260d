"""The public figures' cache: one report per (database, period), at most ``MAX_ENTRIES`` of them, at most
``MAX_COMPUTING`` computed at once, and this month's kept warm so no visitor of the default page waits.

Every distinct ``dari``/``sampai`` range is a new period, so an unbounded cache grows with whatever a crawler
asks; the least recently used reports go first (the warmed ones never). A visitor asking for a period whose
figures are being computed waits for that computation instead of starting another; one asking for yet another
period while ``MAX_COMPUTING`` are running is told to come back (:class:`Busy`, a 503 with ``Retry-After``),
so a burst of odd ranges cannot tie up every core. Once a report is older than ``CACHE_SECONDS`` it is still
served at once while one background thread recomputes it (stale while revalidating).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ntbcare.core.db import Database
from ntbcare.core.models import utcnow
from ntbcare.pipeline.accountability.figures import Report, compute
from ntbcare.pipeline.accountability.periods import Period, current_month
from routing.deadlines import DeadlinePolicy

log = logging.getLogger(__name__)
CACHE_SECONDS = 60.0
MAX_ENTRIES = 64
MAX_COMPUTING = 2  # the web machines have two cores
WAIT_SECONDS = 30.0  # longest a visitor waits on a computation already running for the same period
RETRY_AFTER = 5  # seconds, told to a visitor refused because MAX_COMPUTING are running
WARM_EVERY = CACHE_SECONDS / 2  # the warmed period is recomputed well before its copy expires
Key = tuple[str, str]


class Busy(Exception):
    """Too many periods are being computed right now; ``retry_after`` seconds is a fair wait."""

    def __init__(self, retry_after: int = RETRY_AFTER) -> None:
        super().__init__(f"public figures busy: retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass
class _Entry:
    expires: float
    report: Report
    pinned: bool = False


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    report: Report | None = None
    error: BaseException | None = None


_entries: OrderedDict[Key, _Entry] = OrderedDict()
_flights: dict[Key, _Flight] = {}
_pinned: set[Key] = set()
_lock = threading.Lock()


def _key(db: Database, period: Period) -> Key:
    return (str(db.engine.url), period.key)


def _store(key: Key, report: Report) -> None:
    """Keep ``report``, dropping the least recently used reports beyond ``MAX_ENTRIES`` (lock held)."""
    _entries[key] = _Entry(time.monotonic() + CACHE_SECONDS, report, pinned=key in _pinned)
    _entries.move_to_end(key)
    unpinned = [k for k, e in _entries.items() if not e.pinned]  # the warmed month comes on top of the cap
    for old in unpinned[:max(0, len(unpinned) - MAX_ENTRIES)]:
        del _entries[old]


def _compute(db: Database, policy: DeadlinePolicy, period: Period, now: datetime, key: Key, flight: _Flight) -> None:
    try:
        with db.read_session() as session:  # never holds SQLite's write lock while it reads
            flight.report = compute(session, policy, period, now)
        with _lock:
            _store(key, flight.report)
    except BaseException as exc:
        flight.error = exc
        log.exception("public figures for %s failed", period.key)
    finally:
        with _lock:
            _flights.pop(key, None)
        flight.done.set()


def _start(key: Key, *, force: bool = False) -> _Flight | None:
    """The computation of ``key`` in flight (started now if none and fewer than ``MAX_COMPUTING`` run);
    None when the cap is reached (lock held)."""
    flight = _flights.get(key)
    if flight is None and (force or len(_flights) < MAX_COMPUTING):
        flight = _flights[key] = _Flight()
    return flight


def cached_report(db: Database, policy: DeadlinePolicy, period: Period, now: datetime) -> Report:
    """The period's report: cached, or computed once while every visitor asking for it waits on that one
    computation; raises :class:`Busy` when ``MAX_COMPUTING`` other periods are being computed."""
    key = _key(db, period)
    with _lock:
        entry = _entries.get(key)
        if entry is not None:
            _entries.move_to_end(key)
            if entry.expires <= time.monotonic() and key not in _flights:
                flight = _start(key)
                if flight is not None:
                    threading.Thread(target=_compute, args=(db, policy, period, now, key, flight), daemon=True,
                                     name="ntbcare-public-figures").start()
            return entry.report
        running = key in _flights
        flight = _start(key)
    if flight is None:
        raise Busy()
    if not running:
        _compute(db, policy, period, now, key, flight)
    elif not flight.done.wait(WAIT_SECONDS):
        raise Busy()
    if flight.report is None:
        raise flight.error or RuntimeError("public figures were not computed")
    return flight.report


def computing() -> int:
    """How many computations are running (tests, metrics)."""
    with _lock:
        return len(_flights)


def cached_periods() -> list[str]:
    """The cached periods' keys, least recently used first (tests)."""
    with _lock:
        return [period for _, period in _entries]


def clear_cache() -> None:
    """Forget every cached report (tests; a deployment never needs it)."""
    with _lock:
        _entries.clear()
        _pinned.clear()


class Warmer:
    """Keeps this month's report of one database fresh in this process: computed when the web process starts,
    then every ``WARM_EVERY`` seconds, so its cached copy never expires and the default page never waits."""

    def __init__(self, db: Database, policy: DeadlinePolicy, clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.policy, self.clock = db, policy, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="ntbcare-public-figures-warmer")

    def start(self) -> Warmer:
        self._thread.start()
        return self

    def warm_once(self) -> Report | None:
        """Compute this month's report now (joining a computation already running); None if it failed."""
        now = self.clock()
        period = current_month(now)
        key = _key(self.db, period)
        with _lock:
            for old in [k for k in _pinned if k[0] == key[0] and k != key]:  # last month's is no longer warmed
                _pinned.discard(old)
                if old in _entries:
                    _entries[old].pinned = False
            _pinned.add(key)
            running = key in _flights
            flight = _start(key, force=True)
        assert flight is not None
        if not running:
            _compute(self.db, self.policy, period, now, key, flight)
        flight.done.wait(WAIT_SECONDS * 4)
        return flight.report

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                ok = self.warm_once() is not None
            except Exception:  # the database may be down for a moment: try again soon
                log.exception("warming the public figures failed")
                ok = False
            self._stop.wait(max(1.0, (WARM_EVERY if ok else 10.0) - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
