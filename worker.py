"""Jobs and the worker loop. Jobs take ids only and re-read everything from the database.

With REDIS_URL set, ``ntbcare worker`` runs an RQ worker (JSON serializer, never pickle) plus a sweeper
thread; any number of them may run on any number of machines. Without Redis, the same ``handle_batch``
runs on the embedded queue inside ``ntbcare run``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from typing import Any

from ingest.processing import BatchResult, process_batch
from ntbcare.dispatch import RQDispatcher
from ntbcare.runtime import Runtime
from ntbcare.settings import Settings

log = logging.getLogger(__name__)

_job_runtime: tuple[int, Runtime] | None = None
_route_dispatcher: tuple[tuple[int, str], RQDispatcher] | None = None


def handle_batch(runtime: Runtime, ids: list[int], *, route_later: bool = False) -> BatchResult:
    """Process a batch of stored deliveries; new tickets go on to routing (now, or as their own RQ job)."""
    settings = runtime.settings
    result = process_batch(
        runtime.db, ids, page_id=settings.fb_page_id, max_attempts=settings.max_delivery_attempts
    )
    log.info(
        "deliveries: %d done, %d failed, %d retry later, %d skipped; %d tickets opened",
        len(result.done), len(result.failed), len(result.retry_later), len(result.skipped),
        len(result.opened_ticket_ids),
    )
    if result.opened_ticket_ids:
        try:
            if route_later:
                _route_queue(settings).enqueue_route(result.opened_ticket_ids)
            else:
                runtime.route(result.opened_ticket_ids)
        except Exception:  # the tickets stay "new"; the sweeper routes them on its next round
            log.exception("routing %d new tickets failed; the sweeper retries", len(result.opened_ticket_ids))
    if result.status_requests:
        try:
            runtime.answer_status_requests(result.status_requests)
        except Exception:  # owed replies are retried by the sweeper; unowed ones are asked again by the citizen
            log.exception("answering %d status requests failed", len(result.status_requests))
    return result


def _route_queue(settings: Settings) -> RQDispatcher:
    global _route_dispatcher
    if _route_dispatcher is None or _route_dispatcher[0] != (os.getpid(), settings.redis_url):
        _route_dispatcher = ((os.getpid(), settings.redis_url), RQDispatcher(settings.redis_url))
    return _route_dispatcher[1]


def job_runtime() -> Runtime:
    """The runtime jobs of this process share; rebuilt if the configuration changed (or in a fork)."""
    global _job_runtime
    settings = Settings.from_env()
    if _job_runtime is None or _job_runtime[0] != os.getpid() or _job_runtime[1].settings != settings:
        if _job_runtime is not None and _job_runtime[0] == os.getpid():
            _job_runtime[1].close()
        _job_runtime = (os.getpid(), Runtime.build(settings, mode="inline"))
    return _job_runtime[1]


def process_deliveries(ids: list[int]) -> dict[str, Any]:
    """RQ job: turn these stored deliveries into tickets (ids only); routing follows as its own job."""
    result = handle_batch(job_runtime(), [int(i) for i in ids], route_later=True)
    return {"done": len(result.done), "failed": len(result.failed), "retry_later": len(result.retry_later),
            "skipped": len(result.skipped), "opened": len(result.opened_ticket_ids)}


def route_tickets(ids: list[int]) -> dict[str, Any]:
    """RQ job: classify and route these new tickets, acknowledge them and send the agency e-mails."""
    result = job_runtime().route([int(i) for i in ids])
    return {"routed": len(result.routed), "review": len(result.review), "not_complaint": len(result.not_complaint)}


def run_sweeper(settings: Settings, parent_pid: int) -> None:
    """The sweeper of one `ntbcare worker`, in its own process; it stops when its worker is gone."""
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runtime = Runtime.build(settings, mode="worker")
    dispatcher = runtime.dispatcher
    assert isinstance(dispatcher, RQDispatcher)
    runtime.start_sweeper(dispatch=dispatcher.enqueue_now)
    try:
        while os.getppid() == parent_pid:
            time.sleep(1)
    finally:
        runtime.close()


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None) -> None:
    """Run an RQ worker (and its sweeper process) until stopped, or until the queues are empty with ``burst``.

    The worker forks a work-horse per job (isolation, hard timeouts), so it keeps no threads of its own: the
    sweeper runs in a separate, spawned process (forking while a thread holds an import or I/O lock would
    deadlock the work-horse). A worker killed mid-job loses nothing: its transaction rolls back and a sweeper
    dispatches the deliveries again.
    """
    from rq import Queue, Worker
    from rq.serializers import JSONSerializer

    from ntbcare.dispatch import INGEST_QUEUE, ROUTE_QUEUE

    if not settings.uses_redis:
        raise RuntimeError("REDIS_URL is not set: `ntbcare run` processes deliveries in-process without Redis")
    runtime = Runtime.build(settings, mode="worker")
    dispatcher = runtime.dispatcher
    assert isinstance(dispatcher, RQDispatcher)
    runtime.classifier  # noqa: B018 - loaded before forking, so every work-horse inherits it
    sweeper = multiprocessing.get_context("spawn").Process(
        target=run_sweeper, args=(settings, os.getpid()), name="ntbcare-sweeper", daemon=True
    )
    sweeper.start()
    queues = [dispatcher.queue, Queue(ROUTE_QUEUE, connection=dispatcher.redis, serializer=JSONSerializer)]
    worker = Worker(
        queues,
        connection=dispatcher.redis,
        serializer=JSONSerializer,
        name=name,
        worker_ttl=60,
        job_monitoring_interval=10,
        maintenance_interval=30,
    )
    log.info("worker %s listening on %s and %s", worker.name, INGEST_QUEUE, ROUTE_QUEUE)
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level)
    finally:
        sweeper.terminate()
        sweeper.join(10)
        runtime.close()
