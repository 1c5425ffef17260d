"""What goes back: replies owed to citizens on Facebook, agencies' answers, the editable wording of the
bot and service-wide switches."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ntbcare.core.models.base import Base, BigId, UTCDateTime, utcnow
from ntbcare.core.models.tickets import Ticket


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
    # None only for a status answer to someone with no ticket at all ("that number is not found")
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
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
    # A Messenger text over 2,000 characters is several rows: each part waits until the one it follows is sent.
    follows_id: Mapped[int | None] = mapped_column(ForeignKey("replies.id"), index=True)

    ticket: Mapped[Ticket | None] = relationship()


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
