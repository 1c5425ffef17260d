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
import hashlib
import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ntbcare.core.db import Database
from ntbcare.core.models import DeliveryStatus, utcnow

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)


def insert_delivery(db: Database, body: bytes, *, source: str) -> int:
    """Store one body outside the web path (``ntbcare replay``); the caller processes it."""
    return insert_bodies(db, [(body, source)])[0]


_COLUMNS = ("received_at", "source", "body", "body_sha256", "status", "attempts", "dispatched_at")
_INSERT = f"INSERT INTO deliveries ({', '.join(_COLUMNS)}) VALUES ({', '.join(['?'] * len(_COLUMNS))})"
_EXISTING = "SELECT body_sha256, min(id) FROM deliveries WHERE body_sha256 IN ({}) GROUP BY body_sha256"
# PostgreSQL: writers of bodies with the same hash serialise on one of these advisory locks (first key).
_PG_LOCK_KEY = 0x4E544244  # "NTBD"
_PG_LOCK_BUCKETS = 64


@dataclass(frozen=True)
class Stored:
    """Where a body is stored, and whether this call stored it (False: an identical body already was)."""

    delivery_id: int
    new: bool


def insert_bodies(db: Database, bodies: list[tuple[bytes, str]]) -> list[int]:
    """Insert pending deliveries in one transaction and return their ids, in order (one row per body)."""
    return [s.delivery_id for s in store_bodies(db, bodies, dedupe=False)]


def store_bodies(db: Database, bodies: list[tuple[bytes, str]], *, dedupe: bool = True) -> list[Stored]:
    """Store bodies as pending deliveries in one transaction; with ``dedupe`` a body identical (same SHA-256)
    to one already stored, or earlier in the batch, is not stored again and answers with that delivery.

    A signed body can be replayed by anyone who saw it; its events were never applied twice, but each copy
    used to be a row. This is the hot path of the webhook: the insert goes straight to the DB driver (one
    ``executemany``, no ORM work) so the writer thread holds the GIL as briefly as possible while dozens of
    request threads compete for it; under load that makes a commit several times faster.
    """
    hashes = [hashlib.sha256(body).hexdigest() for body, _ in bodies]
    if db.is_sqlite:
        return _insert_sqlite(db, bodies, hashes, dedupe)
    if db.engine.dialect.name == "postgresql":
        return _insert_postgresql(db, bodies, hashes, dedupe)
    raise ValueError(f"unsupported database {db.engine.dialect.name!r}: use SQLite or PostgreSQL")


def _plan(hashes: list[str], known: dict[str, int], dedupe: bool) -> tuple[list[int], list[int | str]]:
    """The indexes of the bodies to insert, and per body either a known id or the hash its new row will have."""
    if not dedupe:
        return list(range(len(hashes))), list(hashes)
    fresh: list[int] = []
    plan: list[int | str] = []
    seen: set[str] = set()
    for index, digest in enumerate(hashes):
        if digest in known:
            plan.append(known[digest])
            continue
        if digest not in seen:
            seen.add(digest)
            fresh.append(index)
        plan.append(digest)
    return fresh, plan


def _resolve(plan: list[int | str], fresh: list[int], hashes: list[str], ids: list[int]) -> list[Stored]:
    """Per body, its delivery id; ``new`` only for the body whose row was inserted by this call."""
    if len(fresh) == len(plan):  # every body got its own row (always so without dedupe)
        return [Stored(delivery_id, new=True) for delivery_id in ids]
    by_hash = {hashes[index]: delivery_id for index, delivery_id in zip(fresh, ids, strict=True)}
    inserted = set(fresh)
    return [Stored(entry, new=False) if isinstance(entry, int) else Stored(by_hash[entry], new=index in inserted)
            for index, entry in enumerate(plan)]


def _insert_sqlite(db: Database, bodies: list[tuple[bytes, str]], hashes: list[str], dedupe: bool) -> list[Stored]:
    stamp = utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite DateTime storage format, UTC
    with db.write_lock_held():
        connection = db.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")  # no other writer until COMMIT: the lookup below stays true
            try:
                known: dict[str, int] = {}
                if dedupe:
                    distinct = sorted(set(hashes))
                    for start in range(0, len(distinct), 500):
                        part = distinct[start : start + 500]
                        known.update(cursor.execute(_EXISTING.format(", ".join("?" * len(part))), part))
                fresh, plan = _plan(hashes, known, dedupe)
                params = [(stamp, bodies[i][1], bodies[i][0], hashes[i], DeliveryStatus.PENDING, 0, stamp)
                          for i in fresh]
                cursor.executemany(_INSERT, params)
                # Under the exclusive write lock the new rowids are consecutive and the largest.
                last = cursor.execute("SELECT max(id) FROM deliveries").fetchone()[0] or 0
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
        finally:
            connection.close()
    return _resolve(plan, fresh, hashes, list(range(last - len(fresh) + 1, last + 1)))


_PG_LOCK = ("SELECT pg_advisory_xact_lock(%s, bucket) FROM "
            "(SELECT bucket FROM unnest(%s::int[]) AS bucket ORDER BY bucket) AS ordered")
_PG_EXISTING = "SELECT body_sha256, min(id) FROM deliveries WHERE body_sha256 = ANY(%s) GROUP BY body_sha256"
# One statement for the whole batch, rows in the order given (ids from the sequence follow it).
_PG_INSERT = (
    f"INSERT INTO deliveries ({', '.join(_COLUMNS)}) "
    "SELECT %(now)s, source, body, sha, %(status)s, 0, %(now)s "
    "FROM unnest(%(sources)s::text[], %(bodies)s::bytea[], %(hashes)s::text[]) WITH ORDINALITY "
    "AS batch(source, body, sha, position) ORDER BY position RETURNING id"
)


def _insert_postgresql(
    db: Database, bodies: list[tuple[bytes, str]], hashes: list[str], dedupe: bool
) -> list[Stored]:
    """Three round trips whatever the batch size: the advisory locks, the lookup, one INSERT of every row."""
    connection = db.engine.raw_connection()
    try:
        driver = cast("psycopg.Connection[tuple[Any, ...]]", connection.driver_connection)
        with driver.cursor() as cursor:
            known: dict[str, int] = {}
            if dedupe:
                # Two processes storing the same body at once: the second waits for the first's commit and
                # then finds its row. Buckets in sorted order, so writers never wait on each other in a cycle.
                buckets = sorted({int(digest[:8], 16) % _PG_LOCK_BUCKETS for digest in hashes})
                cursor.execute(_PG_LOCK, (_PG_LOCK_KEY, buckets))
                cursor.execute(_PG_EXISTING, (sorted(set(hashes)),))
                known = dict(cursor.fetchall())
            fresh, plan = _plan(hashes, known, dedupe)
            ids: list[int] = []
            if fresh:
                cursor.execute(_PG_INSERT, {"now": utcnow(), "status": DeliveryStatus.PENDING,
                                            "sources": [bodies[i][1] for i in fresh],
                                            "bodies": [bodies[i][0] for i in fresh],
                                            "hashes": [hashes[i] for i in fresh]})
                ids = sorted(row[0] for row in cursor.fetchall())
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        connection.close()
    return _resolve(plan, fresh, hashes, ids)


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
        try:
            stored = store_bodies(self._db, [(p.body, p.source) for p in batch])
        except Exception as exc:
            log.error("could not store %d deliveries: %s", len(batch), exc)
            for p in batch:
                p.error = exc
            self._wake(batch)
            return []
        for p, where in zip(batch, stored, strict=True):
            p.delivery_id = where.delivery_id
        self._wake(batch)
        return [where.delivery_id for where in stored if where.new]  # a resent body is not dispatched again

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
