"""The delivery inbox on SQLite and PostgreSQL: a batch of bodies stored in one transaction, each caller told the
id of the row that holds exactly its body, identical bodies stored once, and a coroutine's wait on the commit."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import select, text

from ntbcare.core.db import Database
from ntbcare.core.delivery_store import store_bodies
from ntbcare.core.inbox import DeliveryWriter
from ntbcare.core.models import Delivery


def bodies_by_id(db: Database) -> dict[int, bytes]:
    with db.session() as session:
        return dict(session.execute(select(Delivery.id, Delivery.body)).all())


def test_each_body_gets_the_id_of_its_own_row_and_repeats_are_stored_once(db: Database) -> None:
    batch = [(f'{{"n": {n}}}'.encode(), "webhook") for n in range(50)]
    batch.insert(10, batch[3])  # the same body twice in one batch
    stored = store_bodies(db, batch)
    rows = bodies_by_id(db)
    assert len(rows) == 50
    assert all(rows[where.delivery_id] == body for where, (body, _) in zip(stored, batch, strict=True))
    assert stored[10].delivery_id == stored[3].delivery_id and not stored[10].new
    again = store_bodies(db, [batch[7], (b'{"n": 99}', "webhook")])  # one already stored, one new
    assert (again[0].delivery_id, again[0].new) == (stored[7].delivery_id, False) and again[1].new
    assert rows.keys() < bodies_by_id(db).keys()


def test_concurrent_writers_each_get_their_own_rows(db: Database) -> None:
    results: dict[int, list[int]] = {}

    def write(worker: int) -> None:
        results[worker] = [s.delivery_id for s in
                           store_bodies(db, [(f'{{"w": {worker}, "n": {n}}}'.encode(), "webhook") for n in range(20)])]

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = bodies_by_id(db)
    for worker, ids in results.items():
        assert [rows[i] for i in ids] == [f'{{"w": {worker}, "n": {n}}}'.encode() for n in range(20)]


def test_a_coroutine_awaits_the_group_commit_and_gets_its_id(db: Database) -> None:
    committed: list[list[int]] = []
    writer = DeliveryWriter(db, on_committed=committed.append)

    async def deliveries() -> list[int]:
        return list(await asyncio.gather(*(writer.store_async(f'{{"a": {n}}}'.encode(), timeout=10)
                                           for n in range(30))))

    ids = asyncio.run(deliveries())
    rows = bodies_by_id(db)
    assert [rows[i] for i in ids] == [f'{{"a": {n}}}'.encode() for n in range(30)]
    assert sorted(i for batch in committed for i in batch) == sorted(ids)


@pytest.mark.postgres
def test_the_writer_outlives_the_loss_of_its_kept_connection(pg_db: Database) -> None:
    """PostgreSQL: the writer keeps one connection between batches; when the server drops it (a restart, an idle
    timeout) the next delivery is still stored, not answered 503."""
    writer = DeliveryWriter(pg_db)
    first = writer.store(b'{"before": 1}', timeout=10)
    with pg_db.engine.connect() as admin:
        killed = admin.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).all()
        admin.commit()
    assert killed, "the writer's kept connection was not found"
    second = writer.store(b'{"after": 1}', timeout=10)
    assert bodies_by_id(pg_db) == {first: b'{"before": 1}', second: b'{"after": 1}'}
