"""The citizen's conversation around a ticket: what waits for the text that usually follows a photo."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from ntbcare.core.models.base import Base, BigId, UTCDateTime


class TicketHold(Base):
    """A ticket opened by an attachment-only or very short message is not classified before ``until``
    (ATTACHMENT_GRACE_SECONDS after it reached us); text from the same citizen meanwhile joins it and ends
    the hold. An empty text is never classified at all."""

    __tablename__ = "ticket_holds"

    ticket_id: Mapped[int] = mapped_column(BigId, ForeignKey("tickets.id"), primary_key=True, autoincrement=False)
    until: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
