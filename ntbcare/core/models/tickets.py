"""Citizens and their tickets: the complaint, each message that belongs to it, its audit trail and the
per-year counter behind its reference number."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ntbcare.core.models.base import Base, BigId, UTCDateTime, utcnow


class TicketStatus:
    NEW = "new"  # stored, not yet routed
    REVIEW = "review"  # an operator must decide
    ROUTED = "routed"
    FORWARDED = "forwarded"
    ANSWERED = "answered"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"  # the citizen removed the comment or post
    NOT_COMPLAINT = "not_complaint"
    MERGED = "merged"  # folded into another ticket (``merged_into_id``), which carries its messages on
    ALL = (NEW, REVIEW, ROUTED, FORWARDED, ANSWERED, CLOSED, WITHDRAWN, NOT_COMPLAINT, MERGED)
    # A Messenger message joins an open ticket; these no longer take new messages.
    FINAL = (CLOSED, WITHDRAWN, NOT_COMPLAINT, MERGED)


class Channel:
    COMMENT = "comment"
    POST = "post"
    MESSENGER = "messenger"
    MENTION = "mention"  # the page tagged in a comment or post elsewhere
    OPEN311 = "open311"  # the province's app or web form, through the Open311 write API
    ALL = (COMMENT, POST, MESSENGER, MENTION, OPEN311)


class Citizen(Base):
    """A person writing to the page: a feed user id, a Messenger PSID, or both once linked."""

    __tablename__ = "citizens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    fb_user_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    psid: Mapped[str | None] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
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
    # The ticket this one was merged into (status ``merged``); the survivor shows its messages (revision 0006).
    merged_into_id: Mapped[int | None] = mapped_column(BigId, index=True)
    routed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    forwarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when the citizen wrote it (the payload's clock)
    # When the delivery that opened it reached us (revision 0010): deadlines count from here, since a payload's
    # own timestamp may be old (a late retry, a replay) or zero.
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_citizen_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    citizen: Mapped[Citizen | None] = relationship()
    messages: Mapped[list[TicketMessage]] = relationship(
        back_populates="ticket", order_by="TicketMessage.occurred_at", cascade="all, delete-orphan"
    )

    # The console's review queue and ticket search read by status, agency or channel, newest or oldest first
    # (revision 0006).
    __table_args__ = (
        Index("ix_tickets_status_opened", "status", "opened_at"),
        Index("ix_tickets_agency_opened", "agency_code", "opened_at"),
        Index("ix_tickets_channel_opened", "channel", "opened_at"),
        Index("ix_tickets_opened_at", "opened_at"),
        # The console's dashboard and overdue board: late tickets counted per agency from the index alone
        # (revision 0005).
        Index("ix_tickets_status_deadline_agency", "status", "deadline_at", "agency_code"),
        Index("ix_tickets_agency_status_deadline", "agency_code", "status", "deadline_at"),
        # The review queue's suggested duplicates (per location, newest first) and ``overdue=1`` answered from
        # the index alone (revision 0010, which also builds the free-text trigram index: core/ticket_search.py).
        Index("ix_tickets_location_opened_updated", "location_code", "opened_at", "updated_at"),
        Index("ix_tickets_status_deadline_opened", "status", "deadline_at", "opened_at"),
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
    # "system", "citizen", "operator:<name>", "agency:<code>", "agency:<code>:<email>" (from the inbox)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    ticket: Mapped[Ticket | None] = relationship()

    # The public figures read the trail by action over a period (revision 0007).
    __table_args__ = (Index("ix_audit_entries_action_at", "action", "at"),)


class TicketCounter(Base):
    """Per-year sequence behind the human reference numbers (NTB-2026-000123)."""

    __tablename__ = "ticket_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer, default=0)
