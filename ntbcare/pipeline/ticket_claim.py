"""Taking hold of a ticket for one operator action, so two operators acting at once cannot both change it.

The action's transaction starts with ``UPDATE tickets SET updated_at = now WHERE id = ? AND updated_at = ?``:
the version the operator saw (the form's ``seen``) or, without one, the version this transaction read. The
update takes the row's write lock (PostgreSQL row lock, SQLite's ``BEGIN IMMEDIATE`` database lock), so a
second operator's action waits for the first to commit, then finds ``updated_at`` moved and is refused with
:class:`TicketChanged`; nothing of it is written. A ticket changed by anything since the page was loaded
(the worker, an agency) is refused the same way.

An action that holds two tickets (a merge) takes them in id order, so two crossed merges (A into B and B into
A at once) queue on the same first row instead of each holding the row the other needs. A lock conflict the
database settles by aborting a transaction (PostgreSQL's deadlock detector, SQLite's "database is locked"
after its busy timeout) is the same situation, and is refused the same way instead of ending in a 500.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ntbcare.core.db import Database
from ntbcare.core.lifecycle import find_ticket
from ntbcare.core.models import Ticket, TicketStatus, utcnow
from ntbcare.pipeline.decisions import DecisionRefused


class TicketChanged(DecisionRefused):
    """Someone (another operator, an agency, the worker) changed the ticket after the operator saw it."""


# PostgreSQL's deadlock_detected, serialization_failure and lock_not_available.
LOCK_CONFLICT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})


def _changed_message(number: str) -> str:
    return (f"Tiket {number} baru saja diubah orang lain. Muat ulang halamannya, periksa keadaannya, lalu ulangi "
            "bila masih perlu. Tidak ada yang diubah.")


class TicketNotFound(DecisionRefused):
    """No ticket has that number: the console goes back to a page that exists, where the refusal can show."""


def version_of(ticket: Ticket) -> str:
    """The ticket's version as a form carries it (``seen``): its last change, to the microsecond."""
    return ticket.updated_at.isoformat()


def parse_seen(value: str | None) -> datetime | None:
    """A form's ``seen`` back into a timestamp; empty or malformed means "whatever is current"."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def lookup(session: Session, number: str) -> Ticket:
    """The ticket by number (or id), or a refusal that says so."""
    ticket = find_ticket(session, number) if number.strip() else None
    if ticket is None:
        raise TicketNotFound(f"Tiket {number.strip()[:40]!r} tidak ditemukan. Periksa nomornya.")
    return ticket


def claim(session: Session, ticket: Ticket, seen: datetime | None = None) -> None:
    """Lock ``ticket`` for this transaction if it is still at version ``seen`` (default: as read)."""
    expected = seen or ticket.updated_at
    result = session.execute(
        update(Ticket).where(Ticket.id == ticket.id, Ticket.updated_at == expected)
        .values(updated_at=utcnow()).execution_options(synchronize_session=False))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise TicketChanged(_changed_message(ticket.number))
    session.refresh(ticket)


def claim_in_order(session: Session, holds: Sequence[tuple[Ticket, datetime | None]]) -> None:
    """Claim several tickets (each at its expected version) lowest id first: every action that holds more
    than one row takes them in the same order, so two of them wait for each other instead of deadlocking."""
    for ticket, seen in sorted(holds, key=lambda hold: hold[0].id):
        claim(session, ticket, seen)


def is_lock_conflict(error: OperationalError) -> bool:
    """The database gave up on this transaction because another one holds what it needs."""
    original = error.orig
    if getattr(original, "sqlstate", None) in LOCK_CONFLICT_SQLSTATES:
        return True
    return "database is locked" in str(original).lower()


@contextmanager
def conflicts_refused(number: str) -> Iterator[None]:
    """Turn a deadlock or lock timeout inside the block into :class:`TicketChanged` (nothing was written:
    the database rolled the transaction back)."""
    try:
        yield
    except OperationalError as error:
        if is_lock_conflict(error):
            raise TicketChanged(_changed_message(number.strip().upper()[:40])) from error
        raise


def refuse_merged(session: Session, ticket: Ticket) -> None:
    """A merged ticket takes no more actions: its survivor does."""
    if ticket.status == TicketStatus.MERGED:
        survivor = session.get(Ticket, ticket.merged_into_id) if ticket.merged_into_id else None
        where = f" ke {survivor.number}" if survivor else ""
        raise DecisionRefused(f"Tiket {ticket.number} sudah digabung{where}; lakukan tindakan di tiket tujuan.")


@contextmanager
def claimed(db: Database, number: str, seen: datetime | None = None) -> Iterator[tuple[Session, Ticket]]:
    """A write transaction holding ``number`` (see the module doc); a refusal inside rolls everything back."""
    with conflicts_refused(number), db.scope() as session:
        ticket = lookup(session, number)
        claim(session, ticket, seen)
        yield session, ticket
