"""Operators of the console and their server-side sessions: a session is a row, so logging out or disabling an
operator ends it at once (a signed cookie alone could not be taken back)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ntbcare.core.models.base import Base, BigId, UTCDateTime, utcnow


class OperatorRole:
    OPERATOR = "operator"  # works tickets
    SUPERVISOR = "supervisor"  # also manages operators, agency contacts and the bot's templates
    ALL = (OPERATOR, SUPERVISOR)


class Operator(Base):
    """A person at Diskominfotik who works tickets in the console."""

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    role: Mapped[str] = mapped_column(String(16), default=OperatorRole.OPERATOR)
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class OperatorSession(Base):
    """One signed-in browser: the cookie holds only the random id, stored here as its SHA-256."""

    __tablename__ = "operator_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    operator: Mapped[Operator] = relationship()
