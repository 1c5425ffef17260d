"""Storing webhook bodies as pending deliveries: one transaction per batch, straight to the DB driver.

The group-committing writer (``ntbcare.core.inbox``) calls this with everything that queued up during the
previous commit; ``ntbcare replay`` calls it with one body.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ntbcare.core.db import Database
from ntbcare.core.models import DeliveryStatus, utcnow

if TYPE_CHECKING:
    import psycopg


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


def store_bodies(db: Database, bodies: list[tuple[bytes, str]], *, dedupe: bool = True,
                 connection: Any = None) -> list[Stored]:
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
        return _insert_postgresql(db, bodies, hashes, dedupe, connection)
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
# With dedupe: the rows not yet stored (the first of each hash in the batch), then every hash's first id, all sent
# at once in a pipeline with the locks and the commit: one round trip (and the fsync) per batch.
_PG_INSERT_FRESH = (
    f"INSERT INTO deliveries ({', '.join(_COLUMNS)}) "
    "SELECT %(now)s, source, body, sha, %(status)s, 0, %(now)s FROM ("
    "SELECT DISTINCT ON (sha) source, body, sha, position "
    "FROM unnest(%(sources)s::text[], %(bodies)s::bytea[], %(hashes)s::text[]) WITH ORDINALITY "
    "AS batch(source, body, sha, position) ORDER BY sha, position) AS fresh "
    "WHERE NOT EXISTS (SELECT 1 FROM deliveries AS stored WHERE stored.body_sha256 = fresh.sha) "
    "ORDER BY position RETURNING body_sha256"
)
_PG_FIRST_IDS = "SELECT body_sha256, min(id) FROM deliveries WHERE body_sha256 = ANY(%s) GROUP BY body_sha256"
# Without dedupe (``ntbcare replay``): every row, in the order given (ids from the sequence follow it).
_PG_INSERT_ALL = (
    f"INSERT INTO deliveries ({', '.join(_COLUMNS)}) "
    "SELECT %(now)s, source, body, sha, %(status)s, 0, %(now)s "
    "FROM unnest(%(sources)s::text[], %(bodies)s::bytea[], %(hashes)s::text[]) WITH ORDINALITY "
    "AS batch(source, body, sha, position) ORDER BY position RETURNING id"
)


def _insert_postgresql(
    db: Database, bodies: list[tuple[bytes, str]], hashes: list[str], dedupe: bool, held: Any = None
) -> list[Stored]:
    """One pipelined round trip per batch: the advisory locks, the insert of what is new, the ids, the commit.

    ``held`` is a connection the caller keeps between batches (the writer thread): no pool checkout and no
    liveness ping per batch; the caller replaces it when a batch fails.
    """
    connection = held if held is not None else db.engine.raw_connection()
    rows = {"now": utcnow(), "status": DeliveryStatus.PENDING, "sources": [source for _, source in bodies],
            "bodies": [body for body, _ in bodies], "hashes": hashes}
    try:
        driver = cast("psycopg.Connection[tuple[Any, ...]]", connection.driver_connection)
        if not dedupe:
            with driver.cursor() as cursor:
                cursor.execute(_PG_INSERT_ALL, rows, prepare=False)
                ids = sorted(row[0] for row in cursor.fetchall())
            connection.commit()
            return [Stored(delivery_id, new=True) for delivery_id in ids]
        # Two processes storing the same body at once: the second waits for the first's commit and then finds
        # its row. Buckets in sorted order, so writers never wait on each other in a cycle.
        buckets = sorted({int(digest[:8], 16) % _PG_LOCK_BUCKETS for digest in hashes})
        # prepare=False: psycopg prepares a statement on its fifth run, and PostgreSQL's generic plan for these
        # (array parameters of unknown length) anti-joins by scanning every stored delivery: each batch then
        # took longer as the table grew (a batch of 8: 3 ms at 8,000 rows, 11 ms at 22,000; custom plans: 1.5 ms
        # at 95,000).
        with driver.pipeline():
            driver.cursor().execute(_PG_LOCK, (_PG_LOCK_KEY, buckets))
            inserted = driver.cursor()
            inserted.execute(_PG_INSERT_FRESH, rows, prepare=False)
            first = driver.cursor()
            first.execute(_PG_FIRST_IDS, (sorted(set(hashes)),), prepare=False)
            driver.commit()
        fresh_hashes = {row[0] for row in inserted.fetchall()}
        first_ids: dict[str, int] = dict(first.fetchall())
    except BaseException:
        with contextlib.suppress(Exception):  # a broken connection cannot even roll back
            connection.rollback()
        raise
    finally:
        if held is None:
            connection.close()
    stored, seen = [], set()
    for digest in hashes:  # the first occurrence of a hash this batch inserted is the new one
        stored.append(Stored(first_ids[digest], new=digest in fresh_hashes and digest not in seen))
        seen.add(digest)
    return stored
