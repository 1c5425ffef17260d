"""Recording a bounce: the outbound mail becomes ``bounced`` with the remote server's diagnostic, and a ticket
whose forward e-mail reached none of the agency's addresses goes back to the review queue (reason
``forward_bounced``), because the agency never got it: an operator fixes the contact or assigns it elsewhere.

A forward e-mail goes to every contact of the agency; one address bouncing while another took it is shown
(the mail is ``bounced``, the dashboard lists it, the contact needs fixing), but the ticket stays with the
agency. Reading the same bounce twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ntbcare.core.bounces import Failure
from ntbcare.core.db import Database
from ntbcare.core.lifecycle import audit
from ntbcare.core.models import MailStatus, OutboundMail, TicketStatus, utcnow
from routing.route import put_in_review

AWAITING_AGENCY = (TicketStatus.ROUTED, TicketStatus.FORWARDED)


@dataclass(frozen=True)
class Recorded:
    """What a bounce changed. ``outcome``: ``bounced``, ``already`` (nothing new) or ``unknown_mail``."""

    outcome: str
    mail_id: int
    kind: str = ""
    bounced_to: tuple[str, ...] = ()
    ticket: str | None = None
    back_in_review: bool = False
    diagnostic: str = ""


def _bounced_recipients(mail: OutboundMail, failures: Sequence[Failure], original: Sequence[str]) -> set[str]:
    """The mail's recipients the report names (as final or original recipient); all of them when it names
    none of theirs (an address that forwards elsewhere, a report that does not say): the mail is ours, so it
    did not arrive somewhere, and the operator must see it."""
    recipients = {r.lower(): r for r in mail.recipients or []}
    named = {f.recipient.lower() for f in failures if f.recipient} | {a.lower() for a in original}
    matched = {recipients[a] for a in named if a in recipients}
    return matched or set(recipients.values())


def record_bounce(db: Database, mail_id: int, failures: Sequence[Failure], *, diagnostic: str,
                  original_recipients: Sequence[str] = (), now: datetime | None = None) -> Recorded:
    """Mark mail ``mail_id`` bounced for the recipients the report names (see the module doc)."""
    at = now or utcnow()
    with db.scope() as session:
        mail = session.get(OutboundMail, mail_id, with_for_update=True)
        if mail is None:
            return Recorded("unknown_mail", mail_id)
        before = set(mail.bounced_to or [])
        bounced = before | _bounced_recipients(mail, failures, original_recipients)
        ticket = mail.ticket
        number = ticket.number if ticket is not None else None
        if bounced == before and mail.status == MailStatus.BOUNCED:
            return Recorded("already", mail_id, mail.kind, tuple(sorted(bounced)), number, diagnostic=diagnostic)
        mail.status, mail.bounced_to = MailStatus.BOUNCED, sorted(bounced)
        mail.bounced_at = mail.bounced_at or at
        mail.error = f"bounced: {diagnostic}"[:2000]
        review = False
        if ticket is not None:
            audit(session, ticket, "mail_bounced", actor="mailer", detail={
                "mail": mail.id, "kind": mail.kind, "to": sorted(bounced - before), "diagnostic": diagnostic[:500]})
            review = (mail.kind == "forward" and set(mail.recipients or []) <= bounced
                      and ticket.status in AWAITING_AGENCY and ticket.agency_code == mail.agency_code
                      and not _delivered_since(session, mail))
            if review:
                # The link it carried never arrived: a new version, so assigning the agency again (its contact
                # fixed) owes a new forward e-mail instead of finding this one already owed.
                ticket.link_version += 1
                put_in_review(session, ticket, "forward_bounced", actor="mailer",
                              detail={"mail": mail.id, "agency": mail.agency_code, "error": diagnostic[:500]})
        return Recorded("bounced", mail_id, mail.kind, tuple(sorted(bounced)), number, review, diagnostic)


def _delivered_since(session: Session, mail: OutboundMail) -> bool:
    """A later forward of the ticket to the same agency that was sent and has not bounced (the link resent to
    a corrected address): the agency has the ticket after all."""
    later = session.scalar(select(OutboundMail.id).where(
        OutboundMail.ticket_id == mail.ticket_id, OutboundMail.kind == "forward", OutboundMail.id > mail.id,
        OutboundMail.agency_code == mail.agency_code, OutboundMail.status == MailStatus.SENT).limit(1))
    return later is not None
