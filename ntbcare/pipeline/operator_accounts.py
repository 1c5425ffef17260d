"""Operator accounts and their server-side sessions: the rules the CLI and the console share.

Passwords are hashed with Argon2id; a session is a random token whose SHA-256 is a row, so logging out or
disabling an operator ends every session at once. A session ends after ``idle_minutes`` without a request and
after ``ABSOLUTE_HOURS`` whatever happens.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ntbcare.core.models import AuditEntry, Operator, OperatorRole, OperatorSession, utcnow

ABSOLUTE_HOURS = 12
MIN_PASSWORD_LENGTH = 10
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,54}$")  # "operator:<name>" fits 64 characters
# Writing last_seen_at on every request would make each page view a write; a minute of slack is enough.
TOUCH_EVERY = timedelta(seconds=60)
_HASHER = PasswordHasher()  # Argon2id with the library's recommended parameters
# Verified against when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("ntbcare-no-such-operator")


class AccountError(ValueError):
    """A request about accounts that cannot be done: ``str()`` says why in English (the CLI), ``indonesian``
    in Bahasa Indonesia (the console)."""

    def __init__(self, english: str, indonesian: str) -> None:
        super().__init__(english)
        self.indonesian = indonesian


@dataclass(frozen=True)
class OperatorView:
    """What a signed-in request knows of its operator."""

    id: int
    username: str
    role: str
    name: str

    @property
    def actor(self) -> str:
        return f"operator:{self.username}"

    @property
    def is_supervisor(self) -> bool:
        return self.role == OperatorRole.SUPERVISOR


def view(operator: Operator) -> OperatorView:
    return OperatorView(id=operator.id, username=operator.username, role=operator.role, name=operator.name)


def normalize_username(username: str) -> str:
    return username.strip().lower()


def check_username(username: str) -> str:
    name = normalize_username(username)
    if not USERNAME_PATTERN.match(name):
        raise AccountError("a username is 2-55 characters: lowercase letters, digits, dot, underscore or hyphen",
                           "Nama pengguna 2–55 karakter: huruf kecil, angka, titik, garis bawah atau tanda hubung.")
    return name


def check_password(password: str, username: str) -> None:
    """The policy: at least ten characters and not the username."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters",
                           f"Kata sandi minimal {MIN_PASSWORD_LENGTH} karakter.")
    if password.strip().lower() == normalize_username(username):
        raise AccountError("the password must not be the username", "Kata sandi tidak boleh sama dengan nama pengguna.")


def audit(session: Session, actor: str, action: str, **detail: object) -> None:
    session.add(AuditEntry(ticket_id=None, actor=actor, action=action, detail=dict(detail)))


def find(session: Session, username: str) -> Operator | None:
    return session.scalar(select(Operator).where(Operator.username == normalize_username(username)))


def add(session: Session, username: str, password: str, *, role: str = OperatorRole.OPERATOR, name: str = "",
        actor: str = "system") -> Operator:
    """Create an operator; the username must be new and the password pass the policy."""
    username = check_username(username)
    if role not in OperatorRole.ALL:
        raise AccountError("the role is operator or supervisor", "Peran harus operator atau supervisor.")
    check_password(password, username)
    if find(session, username) is not None:
        raise AccountError(f"operator {username} already exists", f"Operator {username} sudah ada.")
    operator = Operator(username=username, name=name.strip()[:255], role=role, password_hash=_HASHER.hash(password))
    session.add(operator)
    session.flush()
    audit(session, actor, "operator_added", username=username, role=role)
    return operator


def _existing(session: Session, username: str) -> Operator:
    operator = find(session, username)
    if operator is None:
        name = normalize_username(username)
        raise AccountError(f"operator {name} not found: see `ntbcare operators list`",
                           f"Operator {name} tidak ditemukan.")
    return operator


def end_sessions(session: Session, operator_id: int) -> int:
    """End every open session of one operator; returns how many."""
    result = session.execute(update(OperatorSession)
                             .where(OperatorSession.operator_id == operator_id, OperatorSession.ended_at.is_(None))
                             .values(ended_at=utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)


def disable(session: Session, username: str, *, actor: str = "system") -> Operator:
    """Disable an operator and end their sessions at once."""
    operator = _existing(session, username)
    operator.disabled = True
    end_sessions(session, operator.id)
    audit(session, actor, "operator_disabled", username=operator.username)
    return operator


def set_password(session: Session, username: str, password: str, *, actor: str = "system") -> Operator:
    """Replace the password (and end the operator's sessions: whoever knew the old one is out)."""
    operator = _existing(session, username)
    check_password(password, operator.username)
    operator.password_hash = _HASHER.hash(password)
    end_sessions(session, operator.id)
    audit(session, actor, "operator_password_set", username=operator.username)
    return operator


def list_all(session: Session) -> list[Operator]:
    return list(session.scalars(select(Operator).order_by(Operator.username)))


def authenticate(session: Session, username: str, password: str) -> Operator | None:
    """The enabled operator these credentials belong to, or None (the same time either way)."""
    operator = find(session, username)
    try:
        _HASHER.verify(operator.password_hash if operator else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if operator is None or operator.disabled:
        return None
    if _HASHER.check_needs_rehash(operator.password_hash):
        operator.password_hash = _HASHER.hash(password)
    return operator


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, operator: Operator) -> str:
    """A new session for ``operator``; returns the token for the cookie (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(OperatorSession(token_hash=_digest(token), operator_id=operator.id, created_at=now, last_seen_at=now))
    return token


def expired(row: OperatorSession, *, idle_minutes: int, now: datetime) -> bool:
    return (now - row.last_seen_at > timedelta(minutes=idle_minutes)
            or now - row.created_at > timedelta(hours=ABSOLUTE_HOURS))


@dataclass(frozen=True)
class SessionState:
    """What a session token is worth now: its operator (None when there is none or it has ended), whether
    it existed but expired, and whether its last-seen time is due a write."""

    operator: OperatorView | None
    expired: bool = False
    touch: bool = False


def resolve(session: Session, token: str, *, idle_minutes: int, now: datetime | None = None) -> SessionState:
    """Read-only: the state of the session behind ``token``; the caller ends or touches it in a write."""
    if not token:
        return SessionState(None)
    row = session.scalar(select(OperatorSession).where(OperatorSession.token_hash == _digest(token)))
    if row is None:
        return SessionState(None)
    now = now or utcnow()
    if row.ended_at is not None or row.operator.disabled or expired(row, idle_minutes=idle_minutes, now=now):
        return SessionState(None, expired=True)
    return SessionState(view(row.operator), touch=now - row.last_seen_at > TOUCH_EVERY)


def touch_session(session: Session, token: str) -> None:
    session.execute(update(OperatorSession).where(OperatorSession.token_hash == _digest(token))
                    .values(last_seen_at=utcnow()))


def end_session(session: Session, token: str) -> None:
    row = session.scalar(select(OperatorSession).where(OperatorSession.token_hash == _digest(token)))
    if row is not None and row.ended_at is None:
        row.ended_at = utcnow()
