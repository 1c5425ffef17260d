"""Route new tickets: classify, then not-a-complaint, operator review, or an agency with a forward e-mail.

Classification runs outside the write transaction (it is CPU work); the verdict is applied only to
tickets still ``new``, so running the same routing twice (a retry, two workers) changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ntbcare.core.db import Database
from ntbcare.core.lifecycle import transition
from ntbcare.core.models import Agency, OutboundMail, Ticket, TicketHold, TicketStatus, utcnow
from routing.deadlines import DeadlinePolicy, deadline_for
from routing.verdict import Classification

log = logging.getLogger(__name__)


@dataclass
class RouteResult:
    """Ticket ids by outcome of one routing pass, and the forward mails it owes."""

    not_complaint: list[int] = field(default_factory=list)
    review: list[int] = field(default_factory=list)
    routed: list[int] = field(default_factory=list)
    mail_ids: list[int] = field(default_factory=list)


def put_in_review(session: Session, ticket: Ticket, reason: str, *, actor: str = "classifier",
                  detail: dict | None = None) -> None:
    """Hand the ticket to an operator, saying why (the reason is shown in the review queue)."""
    ticket.review_reason = reason
    transition(session, ticket, TicketStatus.REVIEW, actor=actor, action="review",
               detail={"reason": reason, **(detail or {})})


def forward_key(ticket: Ticket, agency_code: str) -> str:
    """One forward mail per ticket, agency and link version: a retry never mails the agency twice."""
    return f"forward:{ticket.id}:{agency_code}:{ticket.link_version}"


def add_mail(session: Session, *, key: str, kind: str, ticket: Ticket | None, agency_code: str | None,
             recipients: list[str]) -> OutboundMail | None:
    """Record a mail we owe (once per key; ``ticket`` None for a digest); the sender picks it up after commit."""
    if session.scalar(select(OutboundMail.id).where(OutboundMail.key == key)) is not None:
        return None
    mail = OutboundMail(key=key, kind=kind, ticket=ticket, agency_code=agency_code, recipients=list(recipients))
    try:
        with session.begin_nested():
            session.add(mail)
    except IntegrityError:  # another worker recorded it first
        return None
    return mail


@dataclass(frozen=True)
class OwedMail:
    """One mail to owe with :func:`add_mails` (the arguments of :func:`add_mail`)."""

    key: str
    kind: str
    ticket: Ticket | None
    agency_code: str | None
    recipients: list[str]


def add_mails(session: Session, owed: Sequence[OwedMail]) -> list[OutboundMail]:
    """:func:`add_mail` for a batch (the forward mails of a routing pass): one lookup of the keys and one
    savepoint for all; one by one when a concurrent worker recorded one of them first. The mails recorded."""
    if not owed:
        return []
    known = set(session.scalars(select(OutboundMail.key).where(OutboundMail.key.in_([o.key for o in owed]))))
    fresh = {o.key: o for o in owed if o.key not in known}
    mails = [OutboundMail(key=o.key, kind=o.kind, ticket=o.ticket, agency_code=o.agency_code,
                          recipients=list(o.recipients)) for o in fresh.values()]
    try:
        with session.begin_nested():
            session.add_all(mails)
    except IntegrityError:
        return [mail for o in fresh.values() if (mail := add_mail(
            session, key=o.key, kind=o.kind, ticket=o.ticket, agency_code=o.agency_code,
            recipients=o.recipients)) is not None]
    return mails


def assign_agency(
    session: Session, ticket: Ticket, agency_code: str, *, actor: str, now: datetime,
    owed: list[OwedMail] | None = None,
) -> OutboundMail | None:
    """Give ``ticket`` to an agency and owe it the forward e-mail; review when the agency cannot receive it.

    With ``owed`` the mail is appended there for the caller's :func:`add_mails` instead (None is returned)."""
    agency = session.get(Agency, agency_code)
    if agency is None or not agency.active:
        put_in_review(session, ticket, "unknown_agency", actor=actor, detail={"agency": agency_code})
        return None
    ticket.agency_code = agency_code
    if not agency.emails:
        put_in_review(session, ticket, "no_contacts", actor=actor, detail={"agency": agency_code})
        return None
    ticket.review_reason = None
    ticket.routed_at = now
    transition(session, ticket, TicketStatus.ROUTED, actor=actor, action="routed", detail={"agency": agency_code})
    if owed is not None:
        owed.append(OwedMail(forward_key(ticket, agency_code), "forward", ticket, agency_code, agency.emails))
        return None
    return add_mail(session, key=forward_key(ticket, agency_code), kind="forward", ticket=ticket,
                    agency_code=agency_code, recipients=agency.emails)


def apply_classification(session: Session, ticket: Ticket, verdict: Classification, policy: DeadlinePolicy,
                         now: datetime, owed: list[OwedMail] | None = None) -> OutboundMail | None:
    """One verdict applied to one ticket: not a complaint, review, or an agency with its forward mail owed
    (in ``owed`` when given, see :func:`assign_agency`)."""
    ticket.classification = verdict.to_json()
    ticket.confidence = verdict.confidence
    ticket.location_code = verdict.location
    ticket.urgent = verdict.urgent
    if verdict.urgent:
        ticket.tier = "urgent"
    if not verdict.complaint and verdict.abstain_reason is None:
        transition(session, ticket, TicketStatus.NOT_COMPLAINT, actor="classifier", action="classified",
                   detail={"confidence": verdict.confidence})
        return None
    ticket.deadline_at = deadline_for(ticket.tier, ticket.received_at, policy)  # our clock, not the payload's
    if not ticket.text.strip():
        put_in_review(session, ticket, "no_text")
        return None
    if verdict.agency is None:
        put_in_review(session, ticket, verdict.abstain_reason or "low_confidence",
                      detail={"candidates": verdict.candidates[:3]})
        return None
    return assign_agency(session, ticket, verdict.agency, actor="classifier", now=now, owed=owed)


def tickets_to_route(db: Database, ticket_ids: Sequence[int] | None = None, *, older_than: float = 0.0,
                     limit: int = 500, now: datetime | None = None) -> list[tuple[int, str]]:
    """(id, text) of tickets still ``new``: these ids, or every one older than ``older_than`` seconds."""
    at = now or utcnow()
    with db.session() as session:
        query = select(Ticket.id, Ticket.text).where(Ticket.status == TicketStatus.NEW)
        # an attachment-only or very short message waits for the text that usually follows (never chatter)
        held = select(TicketHold.ticket_id).where(TicketHold.ticket_id == Ticket.id, TicketHold.until > at)
        query = query.where(~held.exists())
        if ticket_ids is not None:
            query = query.where(Ticket.id.in_(list(ticket_ids)))
        else:
            query = query.where(Ticket.created_at <= at - timedelta(seconds=older_than))
        return [(row.id, row.text or "") for row in session.execute(query.order_by(Ticket.id).limit(limit))]


def apply_verdicts(session: Session, rows: Sequence[tuple[int, str]], verdicts: Sequence[Classification],
                   policy: DeadlinePolicy, now: datetime) -> RouteResult:
    """Apply verdicts inside the caller's transaction, only to tickets still ``new`` (another worker may
    have routed one meanwhile); the caller commits, together with whatever else the decision owes."""
    result = RouteResult()
    ids = [ticket_id for ticket_id, _ in rows]
    # One query each for the tickets and the agencies (kept referenced, so the identity map holds them), and no
    # flush until the mails are owed: a pass of hundreds of tickets is a handful of round trips, not thousands.
    tickets = {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(ids)))}
    agencies = session.scalars(select(Agency)).all()
    owed: list[OwedMail] = []
    with session.no_autoflush:
        for (ticket_id, _), verdict in zip(rows, verdicts, strict=True):
            ticket = tickets.get(ticket_id)
            if ticket is None or ticket.status != TicketStatus.NEW:
                continue
            if not ticket.text.strip():  # a photo with no words is never chatter: an operator looks at it
                put_in_review(session, ticket, "no_text", detail={"attachments": len(ticket.attachments or [])})
                result.review.append(ticket_id)
                continue
            apply_classification(session, ticket, verdict, policy, now, owed)
            if ticket.status == TicketStatus.NOT_COMPLAINT:
                result.not_complaint.append(ticket_id)
            elif ticket.status == TicketStatus.REVIEW:
                result.review.append(ticket_id)
            else:
                result.routed.append(ticket_id)
    result.mail_ids = [mail.id for mail in add_mails(session, owed)]
    del agencies
    log.info("routed %d tickets: %d to agencies, %d to review, %d not complaints", len(rows),
             len(result.routed), len(result.review), len(result.not_complaint))
    return result

