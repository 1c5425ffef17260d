"""Crossed merges and lock conflicts: two operators merging A into B and B into A at the same moment, on
PostgreSQL and SQLite. Each merge holds both tickets, lowest id first, so one wins and the other is told
("baru saja diubah orang lain"), never a deadlock's 500; a lock the database gives up on (SQLite's "database
is locked") is the same refusal, with nothing written."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from typing import Any

from sqlalchemy import event, func, select

from ntbcare.core.db import Database
from ntbcare.core.migrate import upgrade
from ntbcare.core.models import AuditEntry, TicketStatus
from ntbcare.pipeline import ticket_merge
from ntbcare.pipeline.decisions import DecisionRefused
from ntbcare.pipeline.runtime import Runtime
from ntbcare.pipeline.ticket_claim import TicketChanged
from ntbcare.pipeline.ticket_ops import Done
from tests.conftest import RecordingDispatcher, make_settings
from tests.ops_tickets_seed import make_ticket, seed_agencies_with_contacts, ticket_of

CLAIM = "UPDATE tickets SET updated_at"


def both_hold_their_first_ticket(db: Database) -> Any:
    """Make each thread wait, after its first ticket lock, until the other has taken its own first lock (or
    3 s have passed because it could not): the moment two merges that lock in opposite orders deadlock."""
    barrier = threading.Barrier(2)
    local = threading.local()

    def hold(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith(CLAIM) and not getattr(local, "held", False):
            local.held = True
            # Broken after 3 s: the other merge waits for this one's lock, so it is queued, not crossed.
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=3)

    event.listen(db.engine, "after_cursor_execute", hold)
    return hold


def crossed_merges(runtime: Runtime, db: Database) -> list[object]:
    first, second = make_ticket(db, 1, text="Jalan berlubang di Jl. Udayana"), make_ticket(db, 2)
    seen = {n: ticket_of(db, n).updated_at for n in (first, second)}
    hook = both_hold_their_first_ticket(db)
    results: list[object] = []

    def merge(number: str, into: str, actor: str) -> None:
        try:
            results.append(ticket_merge.merge(runtime.pipeline, number, into, actor=actor, seen=seen[number]))
        except DecisionRefused as refused:
            results.append(refused)
        except Exception as crash:  # what the console would have shown as a 500
            results.append(crash)

    threads = [threading.Thread(target=merge, args=(first, second, "operator:ani")),
               threading.Thread(target=merge, args=(second, first, "operator:budi"))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        event.remove(db.engine, "after_cursor_execute", hook)
    return results


def assert_one_merge_won(db: Database, results: list[object]) -> None:
    assert len(results) == 2
    winners = [r for r in results if isinstance(r, Done)]
    losers = [r for r in results if isinstance(r, TicketChanged)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert "baru saja diubah orang lain" in str(losers[0]) and "Tidak ada yang diubah" in str(losers[0])
    one, two = ticket_of(db, "NTB-2026-000001"), ticket_of(db, "NTB-2026-000002")
    assert sorted([one.status, two.status]) == sorted([TicketStatus.MERGED, TicketStatus.REVIEW])
    merged, survivor = (one, two) if one.status == TicketStatus.MERGED else (two, one)
    assert merged.merged_into_id == survivor.id and survivor.merged_into_id is None
    with db.session() as session:  # exactly one merge was written: one "merged" and one "merged_in"
        actions = list(session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("merged%"))))
    assert sorted(actions) == ["merged", "merged_in"]


def test_crossed_merges_one_wins_and_the_other_is_told(runtime, db) -> None:  # type: ignore[no-untyped-def]
    """On PostgreSQL, locking A then B against B then A was a deadlock the server broke by failing one
    transaction with an OperationalError (a 500 in the console); on SQLite the write lock queued them."""
    seed_agencies_with_contacts(db)
    assert_one_merge_won(db, crossed_merges(runtime, db))


def test_a_ticket_locked_too_long_is_refused_not_a_server_error(sqlite_url: str) -> None:
    """SQLite gives up after its busy timeout with "database is locked": the operator is told, as for a ticket
    someone just changed, and nothing is written."""
    db = Database(sqlite_url, busy_timeout_ms=300)
    upgrade(db.engine)
    seed_agencies_with_contacts(db)
    first, second = make_ticket(db, 1), make_ticket(db, 2)
    runtime = Runtime(settings=make_settings(DATABASE_URL=sqlite_url), db=db, dispatcher=RecordingDispatcher())
    other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None, timeout=0.1)
    try:
        other.execute("BEGIN IMMEDIATE")  # another program (a backup, sqlite3 by hand) holds the write lock
        try:
            ticket_merge.merge(runtime.pipeline, first, second, actor="operator:ani")
        except TicketChanged as refused:
            assert "baru saja diubah orang lain" in str(refused)
        else:
            raise AssertionError("the merge went through while the database was locked")
        other.execute("ROLLBACK")
        assert ticket_of(db, first).status == TicketStatus.REVIEW
        with db.session() as session:
            assert session.scalar(select(func.count()).select_from(AuditEntry)
                                  .where(AuditEntry.action.like("merged%"))) == 0
        done = ticket_merge.merge(runtime.pipeline, first, second, actor="operator:ani")  # free again: it works
        assert "digabung ke NTB-2026-000002" in done.message
    finally:
        other.close()
        db.dispose()
