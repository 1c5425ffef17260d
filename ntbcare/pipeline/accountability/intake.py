"""A service request posted through Open311 becomes a ticket on the ``open311`` channel, then takes the same
way as a Facebook complaint: the classifier routes it, the agency gets the same forward e-mail and deadline.

The requested ``service_code`` is kept in the ticket's audit trail as the client's suggestion; routing still
decides, so the province's app and web form feed the one queue operators watch. Personal fields a client may
send (name, e-mail, phone, device and account ids) are not stored at all. A ``media_url`` is kept as an image
attachment, which the agency sees and the public never does (Open311 reads answer ``media_url`` null).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import uuid4

from sqlalchemy.orm import Session

from ntbcare.core.lifecycle import WITA, audit, ensure_ticket_counter, reserve_ticket_numbers
from ntbcare.core.models import Channel, Ticket, TicketStatus


@dataclass(frozen=True)
class ServiceRequest:
    """The validated fields of a POST (see ntbcare.web.open311 for the checks)."""

    service_code: str
    description: str
    lat: float | None
    long: float | None
    address_string: str | None
    media_url: str | None = None  # checked http(s); kept for the agency, never published


def open_ticket(session: Session, request: ServiceRequest, *, client: str, now: datetime) -> Ticket:
    """Store the request as a new ticket (status ``new``) with an ``opened`` audit entry; the caller routes it."""
    year = now.astimezone(WITA).year
    ensure_ticket_counter(session, year)
    number = reserve_ticket_numbers(session, year, 1)[0]
    text = request.description
    if request.address_string:
        text = f"{text}\n\nLokasi: {request.address_string}"
    attachments: list[dict] = []
    if request.lat is not None and request.long is not None:
        attachments.append({"type": "location", "lat": request.lat, "long": request.long})
    if request.media_url:
        attachments.append({"type": "image", "url": request.media_url})
    ticket = Ticket(number=number, status=TicketStatus.NEW, channel=Channel.OPEN311, text=text,
                    attachments=attachments, origin_id=f"open311:{uuid4().hex}", opened_at=now,
                    last_citizen_message_at=now)
    session.add(ticket)
    session.flush()
    audit(session, ticket, "opened", actor=f"open311:{client}", to_status=ticket.status,
          detail={"channel": Channel.OPEN311, "service_code": request.service_code})
    return ticket
