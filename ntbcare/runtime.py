"""One process's wiring: settings, database, dispatcher, delivery writer and sweeper.

The web app, the worker and the CLI each build one :class:`Runtime` and pass it explicitly, so nothing
is created at import time and tests can swap any part.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ntbcare.db import Database
from ntbcare.dispatch import Dispatcher, EmbeddedDispatcher, InlineDispatcher, RQDispatcher, Sweeper
from ntbcare.inbox import DeliveryWriter
from ntbcare.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    dispatcher: Dispatcher
    sweeper: Sweeper | None = None
    writer: DeliveryWriter = field(init=False)

    def __post_init__(self) -> None:
        # Late-bound so a dispatcher swapped after construction still receives the committed ids.
        self.writer = DeliveryWriter(self.db, on_committed=lambda ids: self.dispatcher.dispatch(ids))

    @classmethod
    def build(cls, settings: Settings, *, mode: str = "inline", db: Database | None = None) -> Runtime:
        """``mode``: "web" (enqueue to RQ, or run the embedded worker when there is no Redis),
        "worker" (RQ worker process), or "inline" (process in the calling thread: CLI and tests)."""
        database = db or Database(settings.database_url)
        runtime = cls(settings=settings, db=database, dispatcher=InlineDispatcher(lambda ids: None))
        runtime.dispatcher = runtime._make_dispatcher(mode)
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

    def process(self, ids: list[int]) -> object:
        from worker import handle_batch

        return handle_batch(self, ids)

    def start_sweeper(self, dispatch=None) -> Sweeper:  # type: ignore[no-untyped-def]
        self.sweeper = Sweeper(
            self.db,
            dispatch or self.dispatcher.dispatch,
            interval=self.settings.sweep_interval,
            redispatch_after=self.settings.redispatch_after,
            batch_size=self.settings.ingest_batch_size,
        ).start()
        return self.sweeper

    def close(self) -> None:
        if self.sweeper is not None:
            self.sweeper.stop()
        self.dispatcher.close()
        self.db.dispose()
