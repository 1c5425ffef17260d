"""Open311 write keys: made once and shown once, stored as SHA-256 only, revoked by name; a revoked key's name
can be given a fresh key (the client got a new key after a leak), an active one must be revoked first.

A key is 32 random bytes (URL-safe text), so a fast hash is enough: nobody can guess one to match a stolen
hash, and looking one up is a single indexed query per request.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ntbcare.core.models import ApiKey, utcnow

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PREFIX_CHARS = 8


class ApiKeyError(ValueError):
    """A key that cannot be made or revoked; the message says why."""


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def add_key(session: Session, name: str, now: datetime | None = None) -> tuple[ApiKey, str, bool]:
    """A new key for the client ``name``; returns the row, the key itself (never stored, shown once) and whether
    it replaced a revoked key of that name (its hash is overwritten: the old key can never work again)."""
    if not NAME.match(name):
        raise ApiKeyError("NAME must be 1-64 letters, digits, dots, dashes or underscores, e.g. ntbcare-app")
    key = secrets.token_urlsafe(32)
    row = session.scalar(select(ApiKey).where(ApiKey.name == name).with_for_update())
    if row is not None:
        if row.revoked_at is None:
            raise ApiKeyError(f"a key named {name!r} exists already and is active: revoke it first "
                              f"(`ntbcare apikeys revoke {name}`) or choose another name")
        row.key_hash, row.prefix = key_hash(key), key[:PREFIX_CHARS]
        row.created_at, row.last_used_at, row.revoked_at = now or utcnow(), None, None
        return row, key, True
    row = ApiKey(name=name, key_hash=key_hash(key), prefix=key[:PREFIX_CHARS])
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise ApiKeyError(f"a key named {name!r} exists already") from None
    return row, key, False


def revoke_key(session: Session, name: str, now: datetime | None = None) -> ApiKey:
    row = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if row is None:
        raise ApiKeyError(f"no key named {name!r}: `ntbcare apikeys list` shows the names")
    if row.revoked_at is None:
        row.revoked_at = now or utcnow()
    return row


def find_active(session: Session, key: str) -> ApiKey | None:
    """The unrevoked key matching ``key`` (None for an unknown or revoked key)."""
    if not key or len(key) > 256:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash(key)))
    if row is None or row.revoked_at is not None:
        return None
    return row
