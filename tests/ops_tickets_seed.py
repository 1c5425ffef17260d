"""Seeding for the console's ticket tests: agencies from the registry with contacts, tickets with a citizen,
messages and the classifier's suggestions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from ntbcare.core.db import Database
from ntbcare.core.models import Agency, Citizen, Ticket, TicketMessage, TicketStatus, utcnow
from ntbcare.pipeline.bootstrap import seed_agencies
from routing.registry import load_registry

PLN = "pengaduan@pln-ntb.test"
PUPR = "pupr@ntbprov.test"


def seed_agencies_with_contacts(db: Database) -> None:
    with db.scope() as session:
        seed_agencies(session, load_registry())
        session.execute(update(Agency).where(Agency.code == "PLN").values(emails=[PLN]))
        session.execute(update(Agency).where(Agency.code == "PUPRPKP").values(emails=[PUPR]))


def make_ticket(db: Database, n: int, *, status: str = TicketStatus.REVIEW, text: str = "Lampu jalan mati",
                hours_ago: float = 5, agency: str | None = None, name: str = "Budi Santoso",
                messages: int = 1, location: str | None = None, channel: str = "comment",
                candidates: list[dict[str, Any]] | None = None, reason: str = "low_confidence") -> str:
    """A ticket NTB-2026-<n> opened ``hours_ago`` with ``messages`` citizen messages (the first is the opening)."""
    number = f"NTB-2026-{n:06d}"
    opened = utcnow() - timedelta(hours=hours_ago)
    with db.scope() as session:
        citizen = Citizen(fb_user_id=f"user-{n}", display_name=name)
        session.add(citizen)
        session.flush()
        ticket = Ticket(number=number, status=status, channel=channel, text=text, origin_id=f"c-{n}-0",
                        citizen_id=citizen.id, agency_code=agency, opened_at=opened, location_code=location,
                        last_citizen_message_at=opened, post_id="p-1", review_reason=reason if
                        status == TicketStatus.REVIEW else None, deadline_at=opened + timedelta(hours=48),
                        classification={"candidates": candidates if candidates is not None else
                                        [{"agency": "PLN", "score": 0.61}, {"agency": "PUPRPKP", "score": 0.22}]})
        session.add(ticket)
        session.flush()
        for i in range(messages):
            session.add(TicketMessage(ticket_id=ticket.id, external_id=f"c-{n}-{i}", kind="comment",
                                      author_id=f"user-{n}", text=text if i == 0 else f"{text} (tambahan {i})",
                                      occurred_at=opened + timedelta(minutes=i)))
    return number


def ticket_of(db: Database, number: str) -> Ticket:
    with db.session() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        session.expunge(ticket)
        return ticket


def message_ids(db: Database, number: str) -> list[str]:
    with db.session() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        return sorted(m.external_id for m in ticket.messages)
