"""The overdue board: tickets whose agency let the first-answer deadline pass, grouped by agency, and the
operator's one-click reminder, owed through the same outbox as the scheduled ones (``outbound_mails``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ntbcare.core.models import Agency, AuditEntry, Ticket, utcnow
from ntbcare.pipeline.console_counts import AWAITING_AGENCY, overdue_filter
from routing.route import add_mail

TICKETS_SHOWN = 10  # per agency on the board; the count says how many there are, the ticket list shows them all


@dataclass
class AgencyOverdue:
    code: str
    name: str
    has_contacts: bool
    count: int = 0
    oldest_deadline: datetime | None = None
    tickets: list[Ticket] = field(default_factory=list)


def board(session: Session, *, now: datetime | None = None) -> list[AgencyOverdue]:
    """Agencies with overdue tickets (most first), each with its most overdue tickets: one grouped count read
    from an index, then at most ``TICKETS_SHOWN`` rows per agency, however many are late."""
    now = now or utcnow()
    late = (*overdue_filter(now), Ticket.agency_code.is_not(None))
    grouped = [(str(code), int(count), oldest) for code, count, oldest in session.execute(
        select(Ticket.agency_code, func.count(), func.min(Ticket.deadline_at)).where(*late)
        .group_by(Ticket.agency_code))]
    agencies = {agency.code: agency for agency in
                session.scalars(select(Agency).where(Agency.code.in_([code for code, _, _ in grouped])))}
    shown = {code: most_overdue(session, code, now) for code, _, _ in grouped}
    rows = []
    for code, count, oldest in grouped:
        agency = agencies.get(code)
        rows.append(AgencyOverdue(code=code, name=agency.name if agency else code,
                                  has_contacts=bool(agency and agency.emails), count=count,
                                  oldest_deadline=oldest, tickets=shown.get(code, [])))
    return sorted(rows, key=lambda r: (-r.count, r.code))


def most_overdue(session: Session, code: str, now: datetime) -> list[Ticket]:
    """One agency's most overdue tickets: a query per awaiting status, each read in deadline order straight from
    the (agency, status, deadline) index, merged here."""
    found: list[Ticket] = []
    for status in AWAITING_AGENCY:
        found += session.scalars(select(Ticket).where(Ticket.agency_code == code, Ticket.status == status,
                                                      Ticket.deadline_at < now)
                                 .order_by(Ticket.deadline_at).limit(TICKETS_SHOWN))
    return sorted(found, key=lambda t: (t.deadline_at or now, t.id))[:TICKETS_SHOWN]


def owe_reminders(session: Session, agency_code: str, *, actor: str, now: datetime | None = None) -> list[int]:
    """Owe one reminder e-mail per overdue ticket of ``agency_code`` to its contacts; at most one per ticket
    and hour, so a double click sends nothing twice. Returns the ids of the mails owed."""
    now = now or utcnow()
    agency = session.get(Agency, agency_code)
    if agency is None or not agency.emails:
        return []
    owed: list[int] = []
    stamp = now.strftime("%Y%m%d%H")
    tickets = session.scalars(select(Ticket).where(*overdue_filter(now), Ticket.agency_code == agency_code))
    for ticket in tickets:
        mail = add_mail(session, key=f"reminder:{ticket.id}:ops:{stamp}", kind="reminder", ticket=ticket,
                        agency_code=agency_code, recipients=list(agency.emails))
        if mail is None:
            continue
        session.flush()
        owed.append(mail.id)
        session.add(AuditEntry(ticket_id=ticket.id, actor=actor, action="reminder_requested",
                               from_status=ticket.status, to_status=ticket.status,
                               detail={"agency": agency_code, "recipients": list(agency.emails)}))
    return owed
