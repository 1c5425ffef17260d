"""Photo first, words a minute later: which new tickets wait for the text that usually follows.

People send a photo and describe it in the next message. A ticket opened by an attachment with no or only a
few words is held (:class:`~ntbcare.core.models.TicketHold`) for ATTACHMENT_GRACE_SECONDS before it is
classified; a Messenger text from the same citizen meanwhile joins the ticket (the open-ticket rule) and,
once the ticket has words enough, ends the hold so it is routed at once. Pure rules plus two row helpers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from ntbcare.core.models import Ticket, TicketHold

# A caption shorter than this many words says too little to classify on its own.
MIN_WORDS = 4


def awaits_text(text: str | None, attachment_count: int) -> bool:
    """True for a ticket that should wait: no words at all, or an attachment with only a few."""
    words = len((text or "").split())
    return words == 0 or (attachment_count > 0 and words < MIN_WORDS)


def hold_new_tickets(session: Session, tickets: list[Ticket], now: datetime, grace_seconds: float) -> list[int]:
    """Hold the new tickets that await their text; returns their ids (the caller's transaction)."""
    if grace_seconds <= 0:
        return []
    held = [t for t in tickets if awaits_text(t.text, len(t.attachments or []))]
    for ticket in held:
        session.add(TicketHold(ticket_id=ticket.id, until=now + timedelta(seconds=grace_seconds)))
    return [t.id for t in held]


def release_if_described(session: Session, ticket: Ticket) -> bool:
    """End a ticket's hold once the citizen's text has joined it; True when it should be routed now."""
    if ticket.id is None or awaits_text(ticket.text, len(ticket.attachments or [])):
        return False
    hold = session.get(TicketHold, ticket.id)
    if hold is None:
        return False
    session.delete(hold)
    return True
