"""What citizens said of an agency's answer: one row per rating, kept per ticket and agency for the public
figures."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ntbcare.core.models.base import Base, BigId, UTCDateTime, utcnow


class RatingValue:
    SATISFIED = "puas"
    UNSATISFIED = "kurang_puas"
    NOT_RESOLVED = "belum_selesai"  # also reopens the ticket
    ALL = (SATISFIED, UNSATISFIED, NOT_RESOLVED)


class Rating(Base):
    """A citizen's rating of the answer a ticket got from ``agency_code`` (the agency at the time)."""

    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    agency_code: Mapped[str | None] = mapped_column(ForeignKey("agencies.code"), index=True)
    value: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
