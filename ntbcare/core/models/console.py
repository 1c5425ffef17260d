"""What operators write on a ticket in the console: internal notes, for colleagues only (never shown to
citizens or agencies)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ntbcare.core.models.base import Base, BigId, UTCDateTime, utcnow


class TicketNote(Base):
    """An operator's internal note on a ticket, shown on the console's ticket timeline only."""

    __tablename__ = "ticket_notes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    author: Mapped[str] = mapped_column(String(255))  # operator:<username>
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
