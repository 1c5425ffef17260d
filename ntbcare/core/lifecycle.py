"""Ticket numbers and status changes. Every status change goes through :func:`transition`,
so every change leaves an audit row.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ntbcare.core.models import AuditEntry, Ticket, TicketCounter, TicketStatus

# Reference numbers follow the calendar of the people who read them (WITA, UTC+8).
WITA = timezone(timedelta(hours=8), "WITA")


def format_ticket_number(year: int, sequence: int) -> str:
    return f"NTB-{year}-{sequence:06d}"


def _apart(session: Session) -> Session | None:
    """On PostgreSQL, a new session of the same engine for a transaction of its own (None on SQLite)."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return None
    return Session(bind=bind.engine if isinstance(bind, Connection) else bind)


def ensure_ticket_counter(session: Session, year: int, *, apart: bool = False) -> None:
    """Create ``year``'s counter row if needed, so that reserving numbers later is a single UPDATE (with
    ``apart``, committed at once: see :func:`reserve_ticket_numbers`)."""
    if apart and (own := _apart(session)) is not None:
        with own, own.begin():
            return ensure_ticket_counter(own, year)
    if session.get(TicketCounter, year) is not None:
        return
    try:
        with session.begin_nested():
            session.add(TicketCounter(year=year, last=0))
    except IntegrityError:  # another worker created it first
        pass


def reserve_ticket_numbers(session: Session, year: int, count: int, *, apart: bool = False) -> list[str]:
    """Take the next ``count`` numbers of ``year`` in one statement; the counter row lock makes it safe
    across workers (a concurrent batch waits for this transaction).

    With ``apart`` on PostgreSQL the numbers are taken in a short transaction of their own, committed at once,
    so concurrent ingest batches do not queue on the counter row for the whole of each other's transaction;
    a batch that then rolls back leaves its numbers unused (skipped, never given twice). SQLite has one
    writer at a time anyway (and the caller holds it), so there ``apart`` changes nothing.
    """
    if count <= 0:
        return []
    if apart and (own := _apart(session)) is not None:
        with own, own.begin():
            return reserve_ticket_numbers(own, year, count)
    bump = (
        update(TicketCounter)
        .where(TicketCounter.year == year)
        .values(last=TicketCounter.last + count)
        .returning(TicketCounter.last)
    )
    last = session.execute(bump).scalar_one_or_none()
    if last is None:
        try:
            with session.begin_nested():
                session.add(TicketCounter(year=year, last=count))
            last = count
        except IntegrityError:  # another worker created this year's counter first
            last = session.execute(bump).scalar_one()
    return [format_ticket_number(year, n) for n in range(last - count + 1, last + 1)]


def audit(
    session: Session,
    ticket: Ticket | None,
    action: str,
    *,
    actor: str = "system",
    from_status: str | None = None,
    to_status: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        ticket=ticket,
        actor=actor,
        action=action,
        from_status=from_status,
        to_status=to_status,
        detail=detail or {},
    )
    session.add(entry)
    return entry


def transition(
    session: Session, ticket: Ticket, to_status: str, *, actor: str = "system", action: str = "status",
    detail: dict[str, Any] | None = None,
) -> bool:
    """Move ``ticket`` to ``to_status`` and audit it; returns False when it already was there."""
    if to_status not in TicketStatus.ALL:
        raise ValueError(f"unknown ticket status {to_status!r}")
    if ticket.status == to_status:
        return False
    before = ticket.status
    ticket.status = to_status
    audit(session, ticket, action, actor=actor, from_status=before, to_status=to_status, detail=detail)
    return True


def find_ticket(session: Session, number_or_id: str) -> Ticket | None:
    """Look a ticket up by its reference number (any case) or numeric id."""
    key = number_or_id.strip().upper()
    if key.isdigit():
        return session.get(Ticket, int(key))
    return session.scalars(select(Ticket).where(Ticket.number == key)).first()
