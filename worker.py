"""Jobs and the worker loop. Jobs take ids only and re-read everything from the database.

With REDIS_URL set, ``ntbcare worker`` runs an RQ worker (JSON serializer, never pickle) plus a sweeper
thread; any number of them may run on any number of machines. Without Redis, the same ``handle_batch``
runs on the embedded queue inside ``ntbcare run``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ingest.processing import BatchResult, process_batch
from ntbcare.runtime import Runtime
from ntbcare.settings import Settings

log = logging.getLogger(__name__)

_job_runtime: tuple[int, Runtime] | None = None


def handle_batch(runtime: Runtime, ids: list[int]) -> BatchResult:
    """Process a batch of stored deliveries; new tickets go on to routing."""
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
            runtime.route(result.opened_ticket_ids)
        except Exception:  # the tickets stay "new"; the sweeper routes them on its next round
            log.exception("routing %d new tickets failed; the sweeper retries", len(result.opened_ticket_ids))
    if result.status_requests:
        try:
            runtime.answer_status_requests(result.status_requests)
        except Exception:  # owed replies are retried by the sweeper; unowed ones are asked again by the citizen
            log.exception("answering %d status requests failed", len(result.status_requests))
    return result


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
    """RQ job: process these stored deliveries (ids only)."""
    result = handle_batch(job_runtime(), [int(i) for i in ids])
    return {"done": len(result.done), "failed": len(result.failed), "retry_later": len(result.retry_later),
            "skipped": len(result.skipped), "opened": len(result.opened_ticket_ids)}


def run_worker(settings: Settings, *, burst: bool = False, name: str | None = None) -> None:
    """Run an RQ worker with a sweeper thread until stopped (or until the queue is empty with ``burst``)."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from ntbcare.dispatch import INGEST_QUEUE, RQDispatcher

    if not settings.uses_redis:
        raise RuntimeError("REDIS_URL is not set: `ntbcare run` processes deliveries in-process without Redis")
    runtime = Runtime.build(settings, mode="worker")
    dispatcher = runtime.dispatcher
    assert isinstance(dispatcher, RQDispatcher)
    runtime.classifier  # noqa: B018 - load once, before the first job
    runtime.start_sweeper(dispatch=dispatcher.enqueue_now)
    # Jobs run in this process (SimpleWorker), not in a forked work-horse: forking while the sweeper thread
    # holds an import or I/O lock deadlocks the child, and a job is a batch of our own short, trusted work.
    # A worker killed mid-job loses nothing: its transaction rolls back and the sweeper dispatches it again.
    worker = SimpleWorker(
        [dispatcher.queue],
        connection=dispatcher.redis,
        serializer=JSONSerializer,
        name=name,
        worker_ttl=60,
        job_monitoring_interval=10,
        maintenance_interval=30,
    )
    log.info("worker %s listening on %s", worker.name, INGEST_QUEUE)
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level)
    finally:
        runtime.close()
