"""Status replies in Messenger: a citizen types a ticket number (or taps the status button) and gets the
ticket's status and the agency's latest answer.

Only the ticket's own citizen (the same PSID) sees its details; anyone else asking about that number gets the
same "not found" answer as for a number that does not exist, so numbers cannot be probed.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.outbox import MESSENGER, owe_reply
from bot.texts import render, status_label
from ntbcare.core.lifecycle import find_ticket
from ntbcare.core.models import Agency, AgencyAnswer, Citizen, Reply, Ticket
from ntbcare.core.settings import Settings


def citizen_tickets(session: Session, psid: str) -> list[Ticket]:
    """The tickets of the person behind a PSID, newest first."""
    citizen_ids = select(Citizen.id).where(Citizen.psid == psid)
    query = select(Ticket).where(or_(Ticket.psid == psid, Ticket.citizen_id.in_(citizen_ids)))
    return list(session.scalars(query.order_by(Ticket.opened_at.desc(), Ticket.id.desc())))


def _belongs_to(ticket: Ticket, psid: str) -> bool:
    return ticket.psid == psid or (ticket.citizen is not None and ticket.citizen.psid == psid)


def status_text(session: Session, ticket: Ticket, *, template: str = "status") -> str:
    """The ticket's status in Indonesian, with the latest agency answer when there is one."""
    answer = session.scalars(
        select(AgencyAnswer).where(AgencyAnswer.ticket_id == ticket.id, AgencyAnswer.action == "answer")
        .order_by(AgencyAnswer.created_at.desc(), AgencyAnswer.id.desc())
    ).first()
    status = status_label(ticket.status)
    if answer is None or template != "status":
        return render(session, template, number=ticket.number, status=status)
    agency = session.get(Agency, answer.agency_code)
    return render(session, "status_with_answer", number=ticket.number, status=status,
                  agency=agency.name if agency is not None else answer.agency_code, answer=answer.text)


def owe_status_reply(session: Session, settings: Settings, psid: str, number: str | None, mid: str) -> Reply:
    """Owe the answer to a status question (once per question ``mid``); every question gets one.

    Someone asking about a number that is not theirs hears what they would for a number that does not exist;
    someone with no ticket at all gets a reply that belongs to no ticket.
    """
    own = citizen_tickets(session, psid)
    found = find_ticket(session, number) if number else None
    ticket: Ticket | None
    if found is not None and _belongs_to(found, psid):
        ticket, text = found, status_text(session, found)
    elif number:
        ticket, text = (own[0] if own else None), render(session, "status_not_found", number=number)
    elif own:
        ticket = own[0]
        text = status_text(session, ticket, template="status_no_number")
    else:
        ticket, text = None, render(session, "status_none")
    return owe_reply(session, ticket, key=f"status:{mid}", kind="status", channel=MESSENGER, target_id=psid,
                     text=text)
