"""The sweeper: the database, not the queue, decides what still has to be done.

Every round it re-dispatches deliveries that are pending but were never dispatched, were lost (Redis
flushed, a worker killed) or are due for a retry, then runs the pipeline's periodic duties (routing
stragglers, follow-up e-mails, owed replies).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from ntbcare.core.db import Database
from ntbcare.core.models import Delivery, DeliveryStatus, utcnow
from ntbcare.pipeline.dispatch import chunks

log = logging.getLogger(__name__)

#: While the queue still holds jobs, a dispatched delivery is most likely waiting in it, not lost: under a surge
#: re-dispatching it after ``redispatch_after`` would only add work where there is least room. It is
#: re-dispatched then once dispatched this many times ``redispatch_after`` ago (a job lost meanwhile).
BUSY_QUEUE_PATIENCE = 10


def sweep(
    db: Database,
    dispatch: Callable[[list[int]], None],
    *,
    redispatch_after: float,
    batch_size: int = 200,
    limit: int = 20_000,
    now: datetime | None = None,
    queued: Callable[[], int] | None = None,
) -> int:
    """Dispatch pending deliveries that were never dispatched, lost, or are due for a retry.

    Deliveries tried before go out one per batch, so one that keeps killing its worker fails alone.
    ``queued`` tells how many jobs still wait in the queue (see :data:`BUSY_QUEUE_PATIENCE`).
    """
    at = now or utcnow()
    patience = redispatch_after
    if queued is not None:
        try:
            busy = queued() > 0
        except Exception as exc:  # the queue is unreachable: dispatching will tell, and the next round retries
            log.warning("could not read the queue's length (%s)", exc)
            busy = False
        if busy:
            patience = redispatch_after * BUSY_QUEUE_PATIENCE
    cutoff = at - timedelta(seconds=patience)
    with db.scope() as session:
        rows = session.execute(
            select(Delivery.id, Delivery.attempts)
            .where(
                Delivery.status == DeliveryStatus.PENDING,
                or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= at),
                or_(Delivery.dispatched_at.is_(None), Delivery.dispatched_at < cutoff),
            )
            .order_by(Delivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return 0
        ids = [r.id for r in rows]
        for part in chunks(ids, 1000):
            session.execute(update(Delivery).where(Delivery.id.in_(part)).values(dispatched_at=at))
    fresh = [r.id for r in rows if r.attempts == 0]
    for part in chunks(fresh, batch_size):
        dispatch(part)
    for r in rows:
        if r.attempts > 0:
            dispatch([r.id])
    log.info("sweeper dispatched %d pending deliveries", len(rows))
    return len(rows)


class Sweeper:
    """Runs :func:`sweep` and the periodic ``tasks`` every ``interval`` seconds in a daemon thread."""

    def __init__(
        self, db: Database, dispatch: Callable[[list[int]], None], *, interval: float, redispatch_after: float,
        batch_size: int = 200, tasks: list[Callable[[], None]] | None = None,
        queued: Callable[[], int] | None = None,
    ) -> None:
        self.db = db
        self.queued = queued
        self.tasks = tasks or []
        self.dispatch = dispatch
        self.interval = interval
        self.redispatch_after = redispatch_after
        self.batch_size = batch_size
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sweeper", daemon=True)

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sweep(self.db, self.dispatch, redispatch_after=self.redispatch_after, batch_size=self.batch_size,
                      queued=self.queued)
            except Exception as exc:
                log.warning("sweep failed (%s); trying again in %ss", exc, self.interval)
            for task in self.tasks:
                try:
                    task()
                except Exception:
                    log.exception("periodic task %s failed; trying again in %ss", task.__name__, self.interval)
            self._stop.wait(self.interval)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
