"""A citizen says the agency's answer did not fix it: the ticket goes back to the agency.

The old agency links stop working (``link_version`` is bumped), the agency is owed the forward e-mail again
with a fresh link, and the deadline restarts from now; an unassigned ticket goes to operators instead.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ntbcare.core.lifecycle import audit
from ntbcare.core.models import OutboundMail, Ticket
from routing.deadlines import DeadlinePolicy, deadline_for
from routing.route import assign_agency, put_in_review


def reopen_not_fixed(session: Session, ticket: Ticket, policy: DeadlinePolicy, now: datetime) -> OutboundMail | None:
    """Reopen in the caller's transaction; returns the forward mail owed to the agency (None if to review)."""
    audit(session, ticket, "reopened", actor="citizen", from_status=ticket.status,
          detail={"reason": "belum selesai", "agency": ticket.agency_code})
    ticket.link_version += 1
    ticket.answered_at = None
    ticket.forwarded_at = None
    ticket.deadline_at = deadline_for(ticket.tier, now, policy)
    if ticket.agency_code is None:
        put_in_review(session, ticket, "reopened", actor="citizen")
        return None
    return assign_agency(session, ticket, ticket.agency_code, actor="citizen", now=now)
