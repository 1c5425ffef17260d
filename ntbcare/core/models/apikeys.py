"""Keys of the software allowed to write to the Open311 API (the province's app, its web form): only the
key's SHA-256 is stored, so a copy of the database gives nobody a working key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ntbcare.core.models.base import Base, BigId, UTCDateTime, utcnow


class ApiKey(Base):
    """One Open311 client: a name people recognise, the hash of its key, and whether it was revoked."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # the first characters, to tell keys apart in a list
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
