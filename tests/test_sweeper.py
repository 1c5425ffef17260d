"""The sweeper honours its settings: a pending delivery is dispatched again REDISPATCH_AFTER seconds after its
last dispatch, never sooner, by a sweeper that runs every SWEEP_INTERVAL seconds."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from ntbcare.core.db import Database
from ntbcare.core.delivery_store import insert_delivery
from ntbcare.core.models import Delivery, DeliveryStatus, utcnow
from ntbcare.pipeline.runtime import Runtime
from ntbcare.pipeline.sweeper import sweep
from tests.conftest import fixture_bytes, make_settings, redis_url


def dispatched_at(db: Database, delivery_id: int) -> datetime | None:
    with db.session() as session:
        return session.scalar(select(Delivery.dispatched_at).where(Delivery.id == delivery_id))


def test_a_recently_dispatched_delivery_waits_redispatch_after_since_its_last_dispatch(db, database_url):
    settings = make_settings(DATABASE_URL=database_url, REDISPATCH_AFTER="300")
    delivery_id = insert_delivery(db, fixture_bytes("feed__comment__add"), source="webhook")
    sent_at = utcnow()
    with db.scope() as session:
        session.execute(update(Delivery).where(Delivery.id == delivery_id).values(dispatched_at=sent_at))
    dispatched: list[list[int]] = []

    def sweep_at(seconds: float) -> int:
        return sweep(db, dispatched.append, redispatch_after=settings.redispatch_after,
                     now=sent_at + timedelta(seconds=seconds))

    assert settings.redispatch_after == 300
    assert sweep_at(60) == 0  # the default would have re-dispatched it by now
    assert sweep_at(299) == 0 and dispatched == []
    assert sweep_at(301) == 1 and dispatched == [[delivery_id]]
    assert dispatched_at(db, delivery_id) == sent_at + timedelta(seconds=301)
    # the clock restarts at that dispatch: lost again, it goes out again 300 s later, not at every sweep
    assert sweep_at(302) == 0 and sweep_at(600) == 0
    assert sweep_at(602) == 1 and dispatched == [[delivery_id], [delivery_id]]


def test_while_the_queue_holds_jobs_a_dispatched_delivery_is_left_in_it(db, database_url):
    """Under a surge the backlog waits in the queue longer than REDISPATCH_AFTER: dispatching it again would
    double the work. A never-dispatched delivery goes out at once; a dispatched one only after ten times the
    wait while the queue is busy (its job may have been lost), at the usual time once the queue is empty."""
    waiting, never = (insert_delivery(db, fixture_bytes("feed__comment__add"), source="webhook") for _ in range(2))
    sent_at = utcnow()
    with db.scope() as session:
        session.execute(update(Delivery).where(Delivery.id == waiting).values(dispatched_at=sent_at))
        session.execute(update(Delivery).where(Delivery.id == never).values(dispatched_at=None))
    dispatched: list[int] = []
    jobs_waiting = [40]

    def sweep_at(seconds: float) -> int:
        return sweep(db, dispatched.extend, redispatch_after=60, now=sent_at + timedelta(seconds=seconds),
                     queued=lambda: jobs_waiting[0])

    assert sweep_at(120) == 1 and dispatched == [never]
    assert sweep_at(599) == 0
    assert sweep_at(601) == 1 and dispatched == [never, waiting]  # ten times the wait: its job may be lost
    jobs_waiting[0] = 0
    assert sweep_at(662) == 2  # an empty queue: both were dispatched over a minute ago and are still pending

    def unreadable() -> int:
        raise ConnectionError("Redis is restarting")

    assert sweep(db, dispatched.extend, redispatch_after=60, now=sent_at + timedelta(seconds=800),
                 queued=unreadable) == 2  # the queue's length unknown: as if it were empty


@pytest.mark.redis
def test_the_sweepers_read_the_length_of_their_own_queue(db, database_url):
    """The rule above needs the queue's length: the embedded sweeper reads the in-process queue, a worker's
    sweeper the Redis ingest queue."""
    from redis import Redis

    from ntbcare.pipeline.dispatch import RQDispatcher

    url = redis_url()
    runtime = Runtime.build(make_settings(DATABASE_URL=database_url), mode="web", db=db)  # no Redis: embedded
    try:
        assert runtime.sweeper is not None and runtime.sweeper.queued is not None
        assert runtime.sweeper.queued() == 0
    finally:
        runtime.close()
    Redis.from_url(url).flushdb()
    dispatcher = RQDispatcher(url, batch_size=2)
    dispatcher.enqueue_now([1, 2, 3, 4, 5])  # three jobs waiting, no worker
    assert dispatcher.queued() == 3
    Redis.from_url(url).flushdb()


def test_done_and_failed_deliveries_are_never_redispatched(db, database_url):
    ids = [insert_delivery(db, fixture_bytes("feed__comment__add"), source="webhook") for _ in range(2)]
    with db.scope() as session:
        session.execute(update(Delivery).where(Delivery.id == ids[0]).values(status=DeliveryStatus.DONE))
        session.execute(update(Delivery).where(Delivery.id == ids[1]).values(status=DeliveryStatus.FAILED))
    dispatched: list[int] = []
    assert sweep(db, dispatched.extend, redispatch_after=1, now=utcnow() + timedelta(days=1)) == 0
    assert dispatched == []


def test_a_runtime_sweeps_at_the_configured_interval_and_recovers_a_lost_dispatch(db, database_url):
    settings = make_settings(DATABASE_URL=database_url, SWEEP_INTERVAL="0.2", REDISPATCH_AFTER="1")
    runtime = Runtime.build(settings, mode="web", db=db)  # no Redis: embedded queue and its sweeper
    try:
        assert runtime.sweeper is not None and runtime.sweeper.is_alive()
        assert (runtime.sweeper.interval, runtime.sweeper.redispatch_after) == (0.2, 1.0)
        # stored as the webhook stores it, but its dispatch never happened (a lost job)
        delivery_id = insert_delivery(db, fixture_bytes("feed__reaction__add"), source="webhook")
        stored_at = dispatched_at(db, delivery_id)
        assert stored_at is not None

        deadline = time.monotonic() + 30
        while True:
            with db.session() as session:
                status = session.scalar(select(Delivery.status).where(Delivery.id == delivery_id))
            if status == DeliveryStatus.DONE or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        runtime.close()

    assert status == DeliveryStatus.DONE  # the running sweeper dispatched it again and it was processed
    redispatched_at = dispatched_at(db, delivery_id)
    assert redispatched_at is not None
    waited = (redispatched_at - stored_at).total_seconds()
    assert waited >= 1.0  # not before REDISPATCH_AFTER
    assert waited < 6.0  # a round every 0.2 s, not every 10 s (the default interval)
