"""When the reply sender may call Graph again: its timings, backoff after a failure, and throttle pauses.

Meta keeps counting calls made while a Page is throttled, so a pass that would have to wait long ends instead:
its rows stay in the database, due again when the pause is over, and the worker is free for other jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.backoff import backoff_delay
from bot.errors import GraphError
from bot.ratelimit import UsageGovernor


@dataclass(frozen=True)
class SenderPolicy:
    """Timing of the sender; the defaults suit production, tests shorten them."""

    max_attempts: int = 8
    lease: timedelta = timedelta(minutes=5)  # longer than any call (timeouts + governor wait)
    reconcile_after: timedelta = timedelta(seconds=30)  # give the Messenger echo time to arrive
    clock_skew: timedelta = timedelta(minutes=5)  # read-back looks this far before the row was owed
    backoff_base: float = 2.0
    backoff_cap: float = 600.0
    max_inline_wait: float = 5.0  # a longer throttle pause ends the pass instead of holding the worker

    def retry_delay(self, error: GraphError, attempts: int) -> float:
        """Seconds before the next try after ``attempts`` tries: jittered backoff, at least what Meta asked."""
        delay = backoff_delay(max(attempts - 1, 0), base=self.backoff_base, cap=self.backoff_cap)
        return max(delay, float(getattr(error, "retry_after_seconds", 0.0) or 0.0))


class Pacer:
    """The clock of one sender pass, and the moment it may resume once a throttle has ended it.

    ``resume_at`` is what rows claimed but not tried are rescheduled to, so they wait out the pause too.
    """

    def __init__(self, policy: SenderPolicy, governor: UsageGovernor, clock: Callable[[], datetime]) -> None:
        self.policy, self.governor, self.clock = policy, governor, clock
        self.resume_at: datetime | None = None

    def now(self) -> datetime:
        return self.clock()

    def after(self, seconds: float) -> datetime:
        """The moment ``seconds`` from now (by the pass's clock)."""
        return self.clock() + timedelta(seconds=seconds)

    def throttled(self) -> bool:
        """True when the governor would hold the next call too long: the pass ends, rows wait in the DB."""
        delay = self.governor.delay_before_next_call()
        if delay <= self.policy.max_inline_wait:
            return False
        self.resume_at = self.after(delay)
        return True

    def pause(self, seconds: float) -> datetime:
        """Meta throttled us: nothing more this pass, and nothing claimed before ``seconds`` from now."""
        self.resume_at = self.after(seconds)
        return self.resume_at
