"""RQ jobs and the worker loop. Jobs take ids only, re-read everything from the database and call the
pipeline (:mod:`ntbcare.pipeline.join`); this module only wires them into RQ.

With REDIS_URL set, ``ntbcare worker`` runs an RQ worker (JSON serializer, never pickle) plus a sweeper
process; any number of them may run on any number of machines. Without Redis, ``ntbcare run`` processes
deliveries on the embedded queue inside the web process instead.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from typing import Any

import redis
from rq import Queue, Worker
from rq.job import Job, get_current_job
from rq.serializers import JSONSerializer

from ntbcare.core.logformat import configure_logging, log_context
from ntbcare.core.metrics import mark_work_horse
from ntbcare.core.settings import Settings
from ntbcare.pipeline.classifier import load_classifier
from ntbcare.pipeline.dispatch import INGEST_QUEUE, ROUTE_QUEUE, RQDispatcher
from ntbcare.pipeline.runtime import Runtime

log = logging.getLogger(__name__)

_job_runtime: tuple[int, Runtime] | None = None


def job_runtime() -> Runtime:
    """The runtime jobs of this process share; rebuilt if the configuration changed (or in a fork)."""
    global _job_runtime
    settings = Settings.from_env()
    if _job_runtime is None or _job_runtime[0] != os.getpid() or _job_runtime[1].settings != settings:
        if _job_runtime is not None and _job_runtime[0] == os.getpid():
            _job_runtime[1].close()
        _job_runtime = (os.getpid(), Runtime.build(settings, mode="job"))
    return _job_runtime[1]


def _job_id() -> str | None:
    job = get_current_job()
    return job.id if job is not None else None


def process_deliveries(ids: list[int]) -> dict[str, Any]:
    """RQ job: turn these stored deliveries into tickets (ids only); routing follows as its own job."""
    with log_context(job_id=_job_id(), delivery_ids=ids):
        result = job_runtime().pipeline.ingest([int(i) for i in ids])
    return {"done": len(result.done), "failed": len(result.failed), "retry_later": len(result.retry_later),
            "skipped": len(result.skipped), "opened": len(result.opened_ticket_ids)}


def route_tickets(ids: list[int]) -> dict[str, Any]:
    """RQ job: classify and route these new tickets, acknowledge them and send the agency e-mails."""
    with log_context(job_id=_job_id(), ticket_ids=ids):
        result = job_runtime().pipeline.route([int(i) for i in ids])
    return {"routed": len(result.routed), "review": len(result.review), "not_complaint": len(result.not_complaint)}


class ModelRefreshingWorker(Worker):
    """An RQ worker that brings its routing model up to date before each fork.

    Work-horses inherit the parent's memory, so a model loaded (or reloaded after `ntbcare routing train`)
    in the parent costs nothing per job; a model loaded inside a horse would be thrown away when it exits.
    """

    model_path: str = ""
    secret_key: str = ""  # the model file is signed with a key derived from SECRET_KEY

    def fork_work_horse(self, job: Job, queue: Queue) -> None:
        if self.model_path:
            try:
                load_classifier(self.model_path, self.secret_key)
            except Exception:  # the job itself reports a broken model; the worker keeps serving
                log.exception("could not load the routing model at %s", self.model_path)
        super().fork_work_horse(job, queue)

    def setup_work_horse_signals(self) -> None:
        """The work-horse ignores SIGTERM (and SIGINT), so stopping the service never cuts a job short.

        systemd signals every process of a service, work-horse included; RQ's horse would die at once and roll
        its job back. Ignoring it, the horse finishes while the parent, told to stop, takes no further job and
        exits after it; a second signal makes the parent kill the horse outright (SIGKILL).
        """
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        mark_work_horse(os.getppid())  # metrics: horses of one worker take turns on one set of files


def run_sweeper(settings: Settings, parent_pid: int) -> None:
    """The sweeper of one `ntbcare worker`, in its own process; it stops when its worker is gone."""
    configure_logging(settings.log_level, settings.log_format)
    runtime = Runtime.build(settings, mode="worker")
    dispatcher = runtime.dispatcher
    assert isinstance(dispatcher, RQDispatcher)
    runtime.start_sweeper(dispatch=dispatcher.enqueue_now, queued=dispatcher.queued)
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
    if not settings.uses_redis:
        raise RuntimeError("REDIS_URL is not set: `ntbcare run` processes deliveries in-process without Redis")
    runtime = Runtime.build(settings, mode="worker")
    dispatcher = runtime.dispatcher
    assert isinstance(dispatcher, RQDispatcher)
    # Loaded before forking, so every work-horse inherits it.
    load_classifier(settings.routing_model_path, settings.secret_key)
    sweeper = multiprocessing.get_context("spawn").Process(
        target=run_sweeper, args=(settings, os.getpid()), name="ntbcare-sweeper", daemon=True
    )
    sweeper.start()
    try:
        while True:
            worker = _new_worker(settings, dispatcher, name)
            log.info("worker %s listening on %s and %s", worker.name, INGEST_QUEUE, ROUTE_QUEUE)
            try:
                worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level)
            except redis.exceptions.RedisError:  # raised by RQ's teardown when Redis is gone
                log.exception("worker %s stopped on a Redis error", worker.name)
            if burst or worker._shutdown_requested_date is not None:
                break
            log.warning("worker %s left its loop without being asked (Redis went away?): starting again once Redis "
                        "answers; nothing is lost, the sweeper re-dispatches from the database", worker.name)
            if not _wait_for_redis(dispatcher.redis):
                break
    finally:
        sweeper.terminate()
        sweeper.join(10)
        runtime.close()


def _new_worker(settings: Settings, dispatcher: RQDispatcher, name: str | None) -> ModelRefreshingWorker:
    queues = [dispatcher.queue, Queue(ROUTE_QUEUE, connection=dispatcher.redis, serializer=JSONSerializer)]
    worker = ModelRefreshingWorker(
        queues,
        connection=dispatcher.redis,
        serializer=JSONSerializer,
        name=name,
        worker_ttl=60,
        job_monitoring_interval=10,
        maintenance_interval=30,
    )
    worker.model_path, worker.secret_key = settings.routing_model_path, settings.secret_key
    return worker


def _wait_for_redis(connection: redis.Redis, *, cap: float = 10.0) -> bool:
    """Wait until Redis answers a PING again; False when told to stop meanwhile (SIGTERM or SIGINT).

    RQ leaves its loop on any Redis error outside its blocking pop (a heartbeat, the maintenance, the scheduler's
    lock), and a Redis restart without persistence also drops the worker's registration: a new worker object
    registers again. Until then a stop signal ends the wait rather than RQ's handlers, which need Redis.
    """
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        delay = 0.5
        while not stop.is_set():
            try:
                if connection.ping():
                    return True
            except redis.exceptions.RedisError as exc:
                log.info("Redis not answering yet (%s); next try in %.1f s", exc, delay)
            stop.wait(delay)
            delay = min(delay * 2, cap)
        return False
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
