"""Handing stored deliveries to workers: RQ on Redis, in-process threads, or the caller's own thread.

Three dispatchers share one small interface: ``dispatch(ids)`` never blocks the caller for long and
never raises. If a dispatch is lost (Redis flushed, a worker killed, the process restarted), the
sweeper (:mod:`ntbcare.pipeline.sweeper`) finds the deliveries still ``pending`` and dispatches them again.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from redis import Redis
from rq import Queue, Retry
from rq.serializers import JSONSerializer

log = logging.getLogger(__name__)

INGEST_QUEUE = "ntbcare-ingest"
INGEST_JOB = "worker.process_deliveries"
ROUTE_QUEUE = "ntbcare-route"
ROUTE_JOB = "worker.route_tickets"

Processor = Callable[[list[int]], object]


class Dispatcher(Protocol):
    def dispatch(self, ids: list[int]) -> None: ...

    def healthy(self) -> bool: ...

    def close(self) -> None: ...


def chunks(ids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def job_id(prefix: str, ids: list[int]) -> str:
    """Deterministic: the same set of ids always maps to the same job id, so a re-enqueue is a no-op."""
    ordered = sorted(ids)
    digest = hashlib.sha1(",".join(map(str, ordered)).encode()).hexdigest()[:20]
    return f"{prefix}-{ordered[0]}-{len(ordered)}-{digest}"


def ingest_job_id(ids: list[int]) -> str:
    return job_id("ingest", ids)


#: Once ids arrive, wait this long for more before handing them on: under a burst the webhook commits a few
#: deliveries every couple of milliseconds, and one job of a hundred costs a worker one fork instead of fifty.
DISPATCH_LINGER = 0.05


def next_batch(pending: queue.Queue[list[int] | None], size: int, *, linger: float = 0.0) -> list[int] | None:
    """Block for the next ids and merge what else arrives within ``linger`` seconds (up to ``size``); None
    means stop."""
    ids = pending.get()
    deadline = time.monotonic() + linger
    while ids is not None and len(ids) < size:
        try:
            more = pending.get(timeout=max(0.0, deadline - time.monotonic())) if linger else pending.get_nowait()
        except queue.Empty:
            break
        if more is None:
            pending.put(None)  # keep the stop signal for the next call
            break
        ids = ids + more
    return ids


class InlineDispatcher:
    """Processes in the caller's thread: for tests and ``ntbcare replay``."""

    def __init__(self, processor: Processor, batch_size: int = 200) -> None:
        self.processor = processor
        self.batch_size = batch_size

    def dispatch(self, ids: list[int]) -> None:
        for part in chunks(sorted(ids), self.batch_size):
            try:
                self.processor(part)
            except Exception:
                log.exception("inline processing of %d deliveries failed; the sweeper retries", len(part))

    def healthy(self) -> bool:
        return True

    def close(self) -> None:
        return None


class EmbeddedDispatcher:
    """An in-process queue and worker threads: the quick start needs no Redis."""

    def __init__(self, processor: Processor, *, threads: int = 1, batch_size: int = 200) -> None:
        self.processor = processor
        self.batch_size = batch_size
        self._queue: queue.Queue[list[int] | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._run, name=f"embedded-worker-{n}", daemon=True) for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def dispatch(self, ids: list[int]) -> None:
        for part in chunks(sorted(ids), self.batch_size):
            self._queue.put(part)

    def queued(self) -> int:
        """Batches waiting for a worker thread."""
        return self._queue.qsize()

    def _run(self) -> None:
        while (ids := next_batch(self._queue, self.batch_size, linger=DISPATCH_LINGER)) is not None:
            try:
                self.processor(ids)
            except Exception:
                log.exception("processing %d deliveries failed; the sweeper retries them", len(ids))

    def healthy(self) -> bool:
        return all(t.is_alive() for t in self._threads)

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)


class RQDispatcher:
    """Enqueues RQ jobs that carry delivery ids only, from a background thread off the request path."""

    def __init__(self, redis_url: str, *, batch_size: int = 200, job_timeout: int = 600) -> None:
        self.batch_size = batch_size
        self.job_timeout = job_timeout
        self.redis = Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=2)
        self.queue = Queue(INGEST_QUEUE, connection=self.redis, serializer=JSONSerializer)
        self._pending: queue.Queue[list[int] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def dispatch(self, ids: list[int]) -> None:
        self._ensure_thread()
        self._pending.put(sorted(ids))

    def enqueue_now(self, ids: list[int]) -> None:
        """Enqueue in the caller's thread (the sweeper and the CLI); raises if Redis is unreachable."""
        jobs = [
            self.queue.prepare_data(
                INGEST_JOB, args=(part,), job_id=ingest_job_id(part), timeout=self.job_timeout,
                result_ttl=60, failure_ttl=7 * 24 * 3600, retry=Retry(max=3, interval=[2, 10, 30]),
            )
            for part in chunks(sorted(ids), self.batch_size)
        ]
        self.queue.enqueue_many(jobs)

    def queued(self) -> int:
        """Ingest jobs waiting in Redis for a worker (raises when Redis is unreachable)."""
        return int(self.queue.count)

    def enqueue_route(self, ticket_ids: list[int]) -> None:
        """Enqueue the routing of new tickets as its own job (the worker takes ingest jobs first)."""
        queue = Queue(ROUTE_QUEUE, connection=self.redis, serializer=self.queue.serializer)
        ids = sorted(ticket_ids)
        queue.enqueue(ROUTE_JOB, ids, job_id=job_id("route", ids), job_timeout=self.job_timeout,
                      result_ttl=60, failure_ttl=7 * 24 * 3600, retry=Retry(max=3, interval=[2, 10, 30]))

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._pending = queue.Queue()
                self._thread = threading.Thread(target=self._run, name="rq-dispatcher", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while (ids := next_batch(self._pending, self.batch_size, linger=DISPATCH_LINGER)) is not None:
            try:
                self.enqueue_now(ids)
            except Exception as exc:  # Redis down: the rows are committed, the sweeper enqueues them later
                log.warning("could not enqueue %d deliveries (%s); the sweeper will", len(ids), exc)

    def healthy(self) -> bool:
        try:
            return bool(self.redis.ping())
        except Exception:
            return False

    def close(self) -> None:
        if self._thread is not None:
            self._pending.put(None)
