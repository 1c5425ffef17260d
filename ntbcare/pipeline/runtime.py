"""One process's wiring: settings, database, the pipeline, its dispatcher, the delivery writer and the sweeper.

The web app, the worker and the CLI each build one :class:`Runtime` and pass it explicitly, so nothing
is created at import time and tests can swap any part.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from ingest.processing import BatchResult
from ntbcare.core.db import Database
from ntbcare.core.inbox import DeliveryWriter
from ntbcare.core.logformat import log_context
from ntbcare.core.settings import Settings
from ntbcare.pipeline.dispatch import Dispatcher, EmbeddedDispatcher, InlineDispatcher, RQDispatcher
from ntbcare.pipeline.join import Pipeline
from ntbcare.pipeline.sweeper import Sweeper

log = logging.getLogger(__name__)

MODES = ("web", "worker", "job", "inline")


@dataclass
class Runtime:
    settings: Settings
    db: Database
    dispatcher: Dispatcher
    sweeper: Sweeper | None = None
    pipeline: Pipeline = field(init=False)
    writer: DeliveryWriter = field(init=False)

    def __post_init__(self) -> None:
        self.pipeline = Pipeline(self.settings, self.db)
        # Late-bound so a dispatcher swapped after construction still receives the committed ids.
        self.writer = DeliveryWriter(self.db, on_committed=lambda ids: self.dispatcher.dispatch(ids))

    @classmethod
    def build(cls, settings: Settings, *, mode: str = "inline", db: Database | None = None) -> Runtime:
        """``mode``: "web" (enqueue to RQ, or run the embedded worker and sweeper when there is no Redis),
        "worker" (an RQ worker process: enqueues), "job" (inside an RQ job: processes here, routing as a job
        of its own), or "inline" (processes in the calling thread: CLI and tests)."""
        if mode not in MODES:
            raise ValueError(f"unknown runtime mode {mode!r}; one of {', '.join(MODES)}")
        database = db or Database(settings.database_url)
        runtime = cls(settings=settings, db=database, dispatcher=InlineDispatcher(lambda ids: None))
        runtime.dispatcher = runtime._make_dispatcher(mode)
        if mode == "job" and settings.uses_redis:
            runtime.pipeline.route_queue = RQDispatcher(settings.redis_url).enqueue_route
        if mode == "web" and not settings.uses_redis:
            runtime.start_sweeper()
        return runtime

    def _make_dispatcher(self, mode: str) -> Dispatcher:
        size = self.settings.ingest_batch_size
        if mode in {"web", "worker"} and self.settings.uses_redis:
            return RQDispatcher(self.settings.redis_url, batch_size=size)
        if mode == "web":
            return EmbeddedDispatcher(self.process, threads=self.settings.embedded_worker_threads, batch_size=size)
        return InlineDispatcher(self.process, batch_size=size)

    def process(self, ids: list[int]) -> BatchResult:
        """Process stored deliveries now, in this thread."""
        with log_context(delivery_ids=ids):
            return self.pipeline.ingest(ids)

    def start_sweeper(self, dispatch: Callable[[list[int]], None] | None = None,
                      queued: Callable[[], int] | None = None) -> Sweeper:
        """``queued``: how many jobs still wait in the queue (the embedded queue's own when not given)."""
        if queued is None and isinstance(self.dispatcher, EmbeddedDispatcher):
            queued = self.dispatcher.queued
        self.sweeper = Sweeper(
            self.db,
            dispatch or self.dispatcher.dispatch,
            interval=self.settings.sweep_interval,
            redispatch_after=self.settings.redispatch_after,
            batch_size=self.settings.ingest_batch_size,
            tasks=self.pipeline.periodic_tasks(),
            queued=queued,
        ).start()
        return self.sweeper

    def close(self) -> None:
        if self.sweeper is not None:
            self.sweeper.stop()
        self.dispatcher.close()
        self.db.dispose()
