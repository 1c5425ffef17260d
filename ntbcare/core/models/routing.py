"""Where tickets go: the agencies, people's routing decisions (the classifier's examples) and the
e-mails owed to agencies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ntbcare.core.models.base import Base, BigId, UTCDateTime, utcnow
from ntbcare.core.models.tickets import Ticket


class Agency(Base):
    """A routing target (OPD, partner or regency). The registry file is the master; this is its copy."""

    __tablename__ = "agencies"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    parent_code: Mapped[str | None] = mapped_column(String(40))
    emails: Mapped[list[str]] = mapped_column(JSON, default=list)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class RoutingDecision(Base):
    """A person's routing decision (operator assign/reassign/not a complaint, agency "not ours"):
    the labelled examples the classifier learns from."""

    __tablename__ = "routing_decisions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    complaint: Mapped[bool] = mapped_column(Boolean)
    agency_code: Mapped[str | None] = mapped_column(String(40))  # the right target (None: not a complaint)
    rejected_code: Mapped[str | None] = mapped_column(String(40))  # the target an agency said is not theirs
    kind: Mapped[str] = mapped_column(String(16))  # assign, reassign, not_complaint, not_ours
    actor: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MailStatus:
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # our SMTP server refused it for good
    BOUNCED = "bounced"  # accepted, then returned by the recipient's mail system (``ntbcare mail bounce``)
    PROBLEMS = (FAILED, BOUNCED)


class OutboundMail(Base):
    """An e-mail we owe someone: written before sending, so a failed send is retried and never lost."""

    __tablename__ = "outbound_mails"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # forward:<ticket>:<agency>:<link version>, reminder:<ticket>:<n>, escalation:<ticket>,
    # digest:<agency>:<ISO week>, sign-in:<id>: each sent once.
    key: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    # None for mails about no single ticket (weekly digest, sign-in link).
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    agency_code: Mapped[str | None] = mapped_column(String(40))
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=MailStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message_id: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A bounce (revision 0013): when the first one came back, and every recipient a bounce named so far.
    bounced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    bounced_to: Mapped[list[str] | None] = mapped_column(JSON)

    ticket: Mapped[Ticket | None] = relationship()

    __table_args__ = (Index("ix_outbound_mails_status_next", "status", "next_attempt_at"),)


class AgencySignIn(Base):
    """A single-use sign-in link mailed to an agency contact. Only the token's SHA-256 is stored; the link
    works once, before ``expires_at``, for the agencies the address was a contact of when it was asked for."""

    __tablename__ = "agency_sign_ins"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(255), index=True)
    agency_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
