"""The SQL schema: the database is the source of truth, Redis only distributes work.

Idempotency lives here: ``events.dedup_key`` and ``ticket_messages.external_id`` are UNIQUE, so a
redelivered or retried Facebook event cannot create a second row, whatever the worker does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always hands back timezone-aware datetimes, also from SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class DeliveryStatus:
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    ALL = (PENDING, DONE, FAILED)


class TicketStatus:
    NEW = "new"  # stored, not yet routed
    REVIEW = "review"  # an operator must decide
    ROUTED = "routed"
    FORWARDED = "forwarded"
    ANSWERED = "answered"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"  # the citizen removed the comment or post
    NOT_COMPLAINT = "not_complaint"
    ALL = (NEW, REVIEW, ROUTED, FORWARDED, ANSWERED, CLOSED, WITHDRAWN, NOT_COMPLAINT)
    # A Messenger message joins an open ticket; these no longer take new messages.
    FINAL = (CLOSED, WITHDRAWN, NOT_COMPLAINT)


class Channel:
    COMMENT = "comment"
    POST = "post"
    MESSENGER = "messenger"
    ALL = (COMMENT, POST, MESSENGER)


class Delivery(Base):
    """One webhook POST body exactly as received: the inbox the worker drains."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[str] = mapped_column(String(16), default="webhook")
    body: Mapped[bytes] = mapped_column(LargeBinary)
    body_sha256: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    item_count: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_deliveries_status_next", "status", "next_attempt_at"),)


class Event(Base):
    """One normalized item of a delivery, or an unsupported one with the reason it was skipped."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    dedup_key: Mapped[str] = mapped_column(String(255), unique=True)
    source: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(128), index=True)
    page_id: Mapped[str | None] = mapped_column(String(64))
    author_id: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # applied (changed a ticket), recorded (kept, no ticket change), unsupported (skipped with a reason)
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket: Mapped[Ticket | None] = relationship()


class Citizen(Base):
    """A person writing to the page: a feed user id, a Messenger PSID, or both once linked."""

    __tablename__ = "citizens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    fb_user_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    psid: Mapped[str | None] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


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


class Ticket(Base):
    """A complaint: opened by a comment, a visitor post or a Messenger message."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=TicketStatus.NEW, index=True)
    channel: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    agency_code: Mapped[str | None] = mapped_column(ForeignKey("agencies.code"), index=True)
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    # The Facebook object that opened the ticket: comment_id, post_id or message mid.
    origin_id: Mapped[str] = mapped_column(String(128), unique=True)
    post_id: Mapped[str | None] = mapped_column(String(128), index=True)
    comment_id: Mapped[str | None] = mapped_column(String(128))
    psid: Mapped[str | None] = mapped_column(String(64), index=True)
    permalink: Mapped[str | None] = mapped_column(Text)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    # Routing: the classifier's verdict, the deadline tier and the first-answer deadline.
    tier: Mapped[str] = mapped_column(String(16), default="normal")
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    location_code: Mapped[str | None] = mapped_column(String(16))
    confidence: Mapped[float | None] = mapped_column(Float)
    classification: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    review_reason: Mapped[str | None] = mapped_column(Text)
    # Bumped to revoke every agency link issued for this ticket (reassignment, a leaked link).
    link_version: Mapped[int] = mapped_column(Integer, default=1)
    routed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    forwarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when the citizen wrote it
    last_citizen_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    citizen: Mapped[Citizen | None] = relationship()
    messages: Mapped[list[TicketMessage]] = relationship(
        back_populates="ticket", order_by="TicketMessage.occurred_at", cascade="all, delete-orphan"
    )


class TicketMessage(Base):
    """Each citizen comment, reply, post or message that belongs to a ticket."""

    __tablename__ = "ticket_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # comment, reply, post, message, postback
    author_id: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="messages")


class AuditEntry(Base):
    """Append-only history: every status change, text edit and operator or agency action."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))  # "system", "citizen", "operator:<name>", "agency:<code>"
    action: Mapped[str] = mapped_column(String(64))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    ticket: Mapped[Ticket | None] = relationship()


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
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MailStatus:
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class OutboundMail(Base):
    """An e-mail we owe someone: written before sending, so a failed send is retried and never lost."""

    __tablename__ = "outbound_mails"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # forward:<ticket>:<agency>:<link version>, reminder:<ticket>:<n>, escalation:<ticket>: each sent once.
    key: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
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

    ticket: Mapped[Ticket] = relationship()

    __table_args__ = (Index("ix_outbound_mails_status_next", "status", "next_attempt_at"),)


class ReplyStatus:
    PENDING = "pending"  # owed; nothing sent yet
    SENDING = "sending"  # claimed by a sender; the Graph call may be in flight
    SENT = "sent"  # Facebook accepted it; graph_id holds what was posted
    UNKNOWN = "unknown"  # ambiguous outcome: reconcile (read back) before any new attempt
    FAILED = "failed"  # gave up after retries, or refused; operators see it and may retry
    UNDELIVERABLE = "undeliverable"  # outside Facebook's window / person unreachable; a fallback may apply
    OPEN = (PENDING, SENDING, UNKNOWN)


class Reply(Base):
    """A message the page owes a citizen on Facebook, written before any Graph call (never twice)."""

    __tablename__ = "replies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # ack-public:<ticket>, ack-private:<ticket>, ack-messenger:<ticket>, answer:<answer id>, status:<mid>, ...
    key: Mapped[str] = mapped_column(String(128), unique=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))  # ack, answer, status, privacy
    # comment_reply (public, POST /{id}/comments), private_reply (recipient.comment_id/post_id), messenger (PSID)
    channel: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=ReplyStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # start of the last attempt (read-back bound)
    graph_id: Mapped[str | None] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    ticket: Mapped[Ticket] = relationship()


class AgencyAnswer(Base):
    """What an agency did through its ticket link: an answer (posted back to the citizen), done, or not ours."""

    __tablename__ = "agency_answers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    agency_code: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(16))  # answer, done, not_ours
    text: Mapped[str] = mapped_column(Text, default="")
    link_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReplyTemplate(Base):
    """Citizen-facing wording that operators can edit (Indonesian); defaults ship with the code."""

    __tablename__ = "reply_templates"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ServiceFlag(Base):
    """Service-wide switches set by the system or operators (e.g. the page token is dead: stop sending)."""

    __tablename__ = "service_flags"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class TicketCounter(Base):
    """Per-year sequence behind the human reference numbers (NTB-2026-000123)."""

    __tablename__ = "ticket_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer, default=0)
