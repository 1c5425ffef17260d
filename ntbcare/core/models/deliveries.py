"""The inbox: webhook bodies exactly as received, and the events parsed from them.

Idempotency lives here: ``events.dedup_key`` is UNIQUE (as is ``ticket_messages.external_id``), so a
redelivered or retried Facebook event cannot create a second row, whatever the worker does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ntbcare.core.models.base import Base, BigId, UTCDateTime, utcnow
from ntbcare.core.models.tickets import Ticket


class DeliveryStatus:
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    ALL = (PENDING, DONE, FAILED)


class Delivery(Base):
    """One webhook POST body exactly as received: the inbox the worker drains."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[str] = mapped_column(String(16), default="webhook")
    body: Mapped[bytes] = mapped_column(LargeBinary)
    # The webhook stores an identical body once (ntbcare.core.delivery_store.store_bodies looks it up here).
    body_sha256: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    item_count: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    # Why a done delivery changed nothing, e.g. "duplicate of event #12" for a redelivered one.
    note: Mapped[str | None] = mapped_column(Text)

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
