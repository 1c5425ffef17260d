"""Photo first, words a minute later: which new tickets wait for the text that usually follows.

People send a photo, or a word or two ("Min, tolong"), and describe the problem in the next message. A ticket
opened by fewer than four words (none at all for a bare photo) is held (:class:`~ntbcare.core.models.TicketHold`)
for ATTACHMENT_GRACE_SECONDS before it is classified. Meanwhile the same citizen's Messenger text joins it (the
open-ticket rule), and so does their next comment on the same post (:meth:`BatchState.waiting_comment_ticket_of`);
once the ticket has words enough the hold ends and it is routed at once. Pure rules plus two row helpers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from ntbcare.core.models import Ticket, TicketHold

# A message shorter than this many words says too little to classify on its own.
MIN_WORDS = 4


@dataclass(frozen=True)
class GraceWindow:
    """How long a new ticket that awaits its words waits, and the moment a batch is applied (the pipeline's
    clock, the same one the hold is set and checked with)."""

    seconds: float
    now: datetime

    def holds(self, until: datetime | None) -> bool:
        """Whether a hold that ends at ``until`` still runs (None: no hold)."""
        return until is not None and until > self.now


def awaits_text(text: str | None) -> bool:
    """True for a ticket that should wait: no words at all, or only a few, with or without an attachment."""
    return len((text or "").split()) < MIN_WORDS


def hold_new_tickets(session: Session, tickets: list[Ticket], now: datetime, grace_seconds: float) -> list[int]:
    """Hold the new tickets that await their text; returns their ids (the caller's transaction)."""
    if grace_seconds <= 0:
        return []
    held = [t for t in tickets if awaits_text(t.text)]
    for ticket in held:
        session.add(TicketHold(ticket_id=ticket.id, until=now + timedelta(seconds=grace_seconds)))
    return [t.id for t in held]


def release_if_described(session: Session, ticket: Ticket) -> bool:
    """End a ticket's hold once the citizen's text has joined it; True when it should be routed now."""
    if ticket.id is None or awaits_text(ticket.text):
        return False
    hold = session.get(TicketHold, ticket.id)
    if hold is None:
        return False
    session.delete(hold)
    return True
