"""Durable storage of webhook bodies with group commit.

Each request hands its body to one writer thread per process and waits. The writer inserts everything
that queued up while the previous commit was flushing in one transaction, so one fsync acknowledges many
deliveries: SQLite with ``synchronous=FULL`` manages ~280 commits/s here, but thousands of rows/s this way.
A request is answered 200 only after its row is committed; if that does not happen within the timeout
the caller answers 503 and Facebook redelivers (duplicates are harmless downstream).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ntbcare.core.db import Database
from ntbcare.core.delivery_store import store_bodies

log = logging.getLogger(__name__)


class StoreFailed(Exception):
    """The database did not take the delivery (down, locked, full, or too slow)."""


@dataclass
class _Pending:
    """One body waiting for the commit; a thread waits on ``done``, a coroutine on ``future`` (of ``loop``)."""

    body: bytes
    source: str
    done: threading.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[int] | None = None
    delivery_id: int | None = None
    error: Exception | None = None


def _settle(items: list[_Pending]) -> None:
    """On an event loop: hand each coroutine its delivery id or its error (unless it gave up waiting)."""
    for pending in items:
        future = pending.future
        if future is None or future.done():
            continue
        if pending.error is not None:
            future.set_exception(StoreFailed(str(pending.error)))
        else:
            future.set_result(pending.delivery_id or 0)


class DeliveryWriter:
    """Group-committing writer: many concurrent ``store`` calls share one transaction."""

    def __init__(
        self,
        db: Database,
        on_committed: Callable[[list[int]], None] | None = None,
        *,
        max_batch: int = 500,
    ) -> None:
        self._db = db
        self._on_committed = on_committed
        self._max_batch = max_batch
        self._queue: queue.Queue[_Pending] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._connection: Any = None  # PostgreSQL: the writer thread's own, kept between batches

    def store(self, body: bytes, *, timeout: float, source: str = "webhook") -> int:
        """Commit ``body`` as a pending delivery and return its id, or raise :class:`StoreFailed`."""
        self._ensure_thread()
        pending = _Pending(body=body, source=source, done=threading.Event())
        self._queue.put(pending)
        assert pending.done is not None
        if not pending.done.wait(timeout):
            raise StoreFailed(f"not committed within {timeout:.2f}s")
        if pending.error is not None:
            raise StoreFailed(str(pending.error)) from pending.error
        assert pending.delivery_id is not None
        return pending.delivery_id

    async def store_async(self, body: bytes, *, timeout: float, source: str = "webhook") -> int:
        """:meth:`store` for a coroutine: the event loop goes on serving while the writer commits."""
        self._ensure_thread()
        loop = asyncio.get_running_loop()
        pending = _Pending(body=body, source=source, loop=loop, future=loop.create_future())
        self._queue.put(pending)
        assert pending.future is not None
        try:
            return await asyncio.wait_for(pending.future, timeout)
        except TimeoutError:
            raise StoreFailed(f"not committed within {timeout:.2f}s") from None

    def _ensure_thread(self) -> None:
        # Started lazily and per process: a thread does not survive gunicorn's fork.
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._queue = queue.Queue()
                self._connection = None  # a parent's connection is the parent's, never shared across a fork
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="delivery-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            ids = self._commit(batch)
            if ids and self._on_committed is not None:
                try:
                    self._on_committed(ids)
                except Exception:  # the sweeper dispatches them later; never lose the writer thread
                    log.exception("dispatching %d stored deliveries failed; the sweeper will retry", len(ids))

    def _commit(self, batch: list[_Pending]) -> list[int]:
        bodies = [(p.body, p.source) for p in batch]
        try:
            try:
                stored = store_bodies(self._db, bodies, connection=self._held_connection())
            except Exception:
                if self._connection is None:
                    raise
                # The kept connection may have died while idle (a database restart, an idle timeout): once more
                # on a fresh one. A body the failed attempt did commit is found by its hash, not stored twice.
                log.warning("storing %d deliveries failed on the kept connection; retrying on a new one",
                            len(batch), exc_info=True)
                self._drop_connection()
                stored = store_bodies(self._db, bodies, connection=self._held_connection())
        except Exception as exc:
            log.error("could not store %d deliveries: %s", len(batch), exc)
            self._drop_connection()
            for p in batch:
                p.error = exc
            self._wake(batch)
            return []
        for p, where in zip(batch, stored, strict=True):
            p.delivery_id = where.delivery_id
        self._wake(batch)
        return [where.delivery_id for where in stored if where.new]  # a resent body is not dispatched again

    def _held_connection(self) -> Any:
        """PostgreSQL: the writer's own connection, opened on first use (SQLite locks per batch instead)."""
        if self._connection is None and self._db.engine.dialect.name == "postgresql":
            self._connection = self._db.engine.raw_connection()
        return self._connection

    def _drop_connection(self) -> None:
        """After a failed batch the next one connects afresh (the database may have restarted)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.invalidate()

    @staticmethod
    def _wake(batch: list[_Pending]) -> None:
        """Release every waiter of a batch: threads one by one, each event loop once for all its coroutines."""
        by_loop: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}
        for p in batch:
            if p.done is not None:
                p.done.set()
            elif p.loop is not None:
                by_loop.setdefault(p.loop, []).append(p)
        for loop, items in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop (its server stopped): nobody waits any more
                loop.call_soon_threadsafe(_settle, items)
