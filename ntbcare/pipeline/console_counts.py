"""What needs a person, counted for the console's dashboard, and the lists behind each count.

Each list is small by nature (what is broken or late), so the pages show the newest ``LIST_LIMIT`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ntbcare.core.models import (
    Agency,
    Delivery,
    DeliveryStatus,
    MailStatus,
    MediaFile,
    MediaStatus,
    OutboundMail,
    Reply,
    ReplyStatus,
    Ticket,
    TicketStatus,
    utcnow,
)

LIST_LIMIT = 200
# Tickets an agency still owes a first answer: late once their deadline has passed.
AWAITING_AGENCY = (TicketStatus.ROUTED, TicketStatus.FORWARDED)
REPLY_PROBLEMS = (ReplyStatus.FAILED, ReplyStatus.UNDELIVERABLE)


@dataclass(frozen=True)
class Counts:
    review: int
    overdue: int
    overdue_agencies: int
    failed_replies: int
    failed_deliveries: int
    failed_mails: int
    agencies_without_contacts: int
    failed_media: int


def overdue_filter(now: datetime) -> tuple[Any, ...]:
    return (Ticket.status.in_(AWAITING_AGENCY), Ticket.deadline_at.is_not(None), Ticket.deadline_at < now)


def _count(session: Session, *where: Any, model: Any = Ticket) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def agencies_without_contacts(session: Session) -> list[Agency]:
    """Active agencies with no contact address: what is routed to them cannot be forwarded."""
    agencies = session.scalars(select(Agency).where(Agency.active.is_(True)).order_by(Agency.code))
    return [agency for agency in agencies if not agency.emails]


def counts(session: Session, *, now: datetime | None = None) -> Counts:
    now = now or utcnow()
    late = overdue_filter(now)
    return Counts(
        review=_count(session, Ticket.status == TicketStatus.REVIEW),
        overdue=_count(session, *late),
        overdue_agencies=int(session.scalar(select(func.count(func.distinct(Ticket.agency_code))).where(*late)) or 0),
        failed_replies=_count(session, Reply.status.in_(REPLY_PROBLEMS), model=Reply),
        failed_deliveries=_count(session, Delivery.status == DeliveryStatus.FAILED, model=Delivery),
        failed_mails=_count(session, OutboundMail.status.in_(MailStatus.PROBLEMS), model=OutboundMail),
        agencies_without_contacts=len(agencies_without_contacts(session)),
        failed_media=_count(session, MediaFile.status == MediaStatus.FAILED, model=MediaFile),
    )


def failed_replies(session: Session) -> list[Reply]:
    return list(session.scalars(select(Reply).where(Reply.status.in_(REPLY_PROBLEMS))
                                .order_by(Reply.id.desc()).limit(LIST_LIMIT)))


def failed_deliveries(session: Session) -> list[Delivery]:
    return list(session.scalars(select(Delivery).where(Delivery.status == DeliveryStatus.FAILED)
                                .order_by(Delivery.id.desc()).limit(LIST_LIMIT)))


def failed_mails(session: Session) -> list[OutboundMail]:
    """Mails our SMTP server refused for good, and mails that came back from the recipient's (bounced)."""
    return list(session.scalars(select(OutboundMail).where(OutboundMail.status.in_(MailStatus.PROBLEMS))
                                .order_by(OutboundMail.id.desc()).limit(LIST_LIMIT)))


def failed_media(session: Session) -> list[MediaFile]:
    """Attachments whose download gave up after its retries (refused ones have a final reason of their own)."""
    return list(session.scalars(select(MediaFile).where(MediaFile.status == MediaStatus.FAILED)
                                .order_by(MediaFile.id.desc()).limit(LIST_LIMIT)))
