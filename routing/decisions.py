"""People's routing decisions: they change the ticket and become training examples for the classifier.

Operators assign, reassign or mark "not a complaint"; an agency says "not ours" (back to review, or on
to a named target). Each decision is stored as a RoutingDecision; `ntbcare routing train` learns from them.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ntbcare.core.lifecycle import transition
from ntbcare.core.models import RoutingDecision, Ticket, TicketStatus, utcnow
from routing.examples import Example
from routing.route import assign_agency, put_in_review


def _record(session: Session, ticket: Ticket, *, kind: str, complaint: bool, agency: str | None, actor: str,
            rejected: str | None = None) -> RoutingDecision:
    decision = RoutingDecision(ticket_id=ticket.id, text=ticket.text, complaint=complaint, agency_code=agency,
                               rejected_code=rejected, kind=kind, actor=actor)
    session.add(decision)
    return decision


def _revoke_links(ticket: Ticket) -> None:
    """A new assignment invalidates every link the previous agency received."""
    ticket.link_version += 1


def assign(session: Session, ticket: Ticket, agency_code: str, *, actor: str) -> None:
    """An operator gives the ticket to ``agency_code`` (a reassignment when it had another agency)."""
    previous = ticket.agency_code
    kind = "reassign" if previous and previous != agency_code else "assign"
    _record(session, ticket, kind=kind, complaint=True, agency=agency_code, actor=actor)
    if previous and previous != agency_code:
        _revoke_links(ticket)
    if ticket.status in (TicketStatus.ROUTED, TicketStatus.FORWARDED):
        transition(session, ticket, TicketStatus.REVIEW, actor=actor, action="reassigning",
                   detail={"from": previous, "to": agency_code})
    assign_agency(session, ticket, agency_code, actor=actor, now=utcnow())


def mark_not_complaint(session: Session, ticket: Ticket, *, actor: str) -> None:
    """An operator says the message asks nothing of anyone; recorded, so the classifier learns it too."""
    _record(session, ticket, kind="not_complaint", complaint=False, agency=None, actor=actor)
    ticket.review_reason = None
    transition(session, ticket, TicketStatus.NOT_COMPLAINT, actor=actor, action="not_complaint")


def agency_not_ours(session: Session, ticket: Ticket, *, reason: str, suggested: str | None = None,
                    actor: str | None = None) -> None:
    """The agency declines; with a suggested target the ticket goes straight on, else to an operator.
    ``actor`` names who declined (default ``agency:<code>``; from the inbox ``agency:<code>:<email>``)."""
    rejected = ticket.agency_code
    actor = actor or f"agency:{rejected}"
    _record(session, ticket, kind="not_ours", complaint=True, agency=suggested, actor=actor, rejected=rejected)
    _revoke_links(ticket)
    if suggested:
        transition(session, ticket, TicketStatus.REVIEW, actor=actor, action="not_ours",
                   detail={"reason": reason, "suggested": suggested})
        assign_agency(session, ticket, suggested, actor=actor, now=utcnow())
        return
    ticket.agency_code = None
    put_in_review(session, ticket, "not_ours", actor=actor, detail={"reason": reason, "agency": rejected})


def training_examples(session: Session) -> list[Example]:
    """The latest decision per ticket that names a label (an agency, or not a complaint)."""
    latest: dict[int | None, RoutingDecision] = {}
    for decision in session.scalars(select(RoutingDecision).order_by(RoutingDecision.id)):
        if decision.complaint and not decision.agency_code:
            continue  # "not ours" without a new target says what it is not, not what it is
        latest[decision.ticket_id if decision.ticket_id is not None else -decision.id] = decision
    return [
        Example(text=d.text, complaint=d.complaint, agency=d.agency_code, family=f"op-{d.ticket_id or d.id}")
        for d in latest.values()
        if d.text.strip()
    ]
