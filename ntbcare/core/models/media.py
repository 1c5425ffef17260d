"""Citizens' photos and files kept in storage the project owns: one row per attachment of a ticket message.

Facebook's attachment URLs are temporary CDN links. A row is owed in the transaction that stores the message
(so nothing is lost if a process stops), is claimed by one downloader at a time (``downloading`` with a
lease, like the reply outbox) and ends ``stored`` (the file under MEDIA_DIR, named by its SHA-256),
``refused`` (too large, a type that is not kept, a host that is not Facebook's CDN, expired at Facebook) or
``failed`` (gave up after retries; ``ntbcare media retry`` puts it back).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ntbcare.core.models.base import Base, BigId, UTCDateTime, utcnow
from ntbcare.core.models.tickets import Ticket, TicketMessage


class MediaStatus:
    PENDING = "pending"  # owed; waits for its turn (and for its ticket to be a complaint)
    DOWNLOADING = "downloading"  # claimed by a downloader at ``claimed_at``; stale after the lease
    STORED = "stored"  # the file is at ``stored_path`` under MEDIA_DIR
    REFUSED = "refused"  # final: ``reason`` says why (size, type, host, expired at Facebook)
    FAILED = "failed"  # gave up after the attempts; operators see it and may retry
    ALL = (PENDING, DOWNLOADING, STORED, REFUSED, FAILED)


class MediaFile(Base):
    """One attachment to keep: which ticket and message it came with, where from, and what became of it."""

    __tablename__ = "ticket_media"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("ticket_messages.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # index in the message's ``attachments``
    kind: Mapped[str] = mapped_column(String(16))  # the attachment's type: image, photo, video, audio, file
    source_url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=MediaStatus.PENDING)
    reason: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(String(100))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    stored_path: Mapped[str | None] = mapped_column(String(255))  # relative to MEDIA_DIR
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    stored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    ticket: Mapped[Ticket] = relationship()
    message: Mapped[TicketMessage] = relationship()

    __table_args__ = (
        UniqueConstraint("message_id", "position", name="uq_ticket_media_message_position"),
        Index("ix_ticket_media_status_next", "status", "next_attempt_at"),
    )
