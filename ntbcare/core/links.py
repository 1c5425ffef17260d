"""Signed, expiring single-ticket links through which an agency answers without an account.

A token names one ticket, one agency and the ticket's ``link_version`` at issue time; it is signed with
itsdangerous (HMAC-SHA256, not its SHA-1 default, so a link signed the old way no longer opens anything) under
the salt ``agency-ticket-link`` so a token made for another purpose with the same key is rejected. Signed tokens
cannot be revoked by themselves: the caller compares ``claims.link_version`` with the ticket's current value in
the database and bumps that value to revoke every earlier link. The token is signed,
not encrypted: the ticket id and agency code inside it are readable by whoever holds the link.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer

LINK_SALT = "agency-ticket-link"
LINK_SIGNER_KWARGS = {"digest_method": hashlib.sha256}
LINK_PATH_PREFIX = "/a/"
CLOCK_SKEW_SECONDS = 60


@dataclass(frozen=True)
class AgencyLinkClaims:
    """What a valid token says: which ticket, for which agency, which link generation, issued when (UTC)."""

    ticket_id: int
    agency_code: str
    link_version: int
    issued_at: datetime


class AgencyLinkError(Exception):
    """Base of the link errors; the page shows "link not valid" and never any ticket data."""


class LinkInvalid(AgencyLinkError):
    """Tampered, truncated, signed with another key or salt, or not an agency link at all."""


class LinkExpired(AgencyLinkError):
    """Genuine but older than allowed; ``claims`` lets the page tell the agency how to get a fresh link."""

    def __init__(self, claims: AgencyLinkClaims) -> None:
        super().__init__(f"agency link for ticket {claims.ticket_id} has expired")
        self.claims = claims


def signer(secret_key: str | Sequence[str], salt: str) -> URLSafeTimedSerializer:
    """A timed HMAC-SHA256 serializer for one purpose (``salt``); with a key list the last (newest) key signs."""
    keys = [secret_key] if isinstance(secret_key, str) else list(secret_key)
    if not keys or not all(isinstance(key, str) and key for key in keys):
        raise ValueError("the link signing key must be a non-empty string (or a list of them, newest last)")
    return URLSafeTimedSerializer(keys, salt=salt, signer_kwargs=LINK_SIGNER_KWARGS)


def _serializer(secret_key: str | Sequence[str]) -> URLSafeTimedSerializer:
    return signer(secret_key, LINK_SALT)


def make_agency_token(secret_key: str | Sequence[str], ticket_id: int, agency_code: str,
                      link_version: int) -> str:
    """A URL-safe token for one ticket and agency; with a key list the last (newest) key signs."""
    if isinstance(ticket_id, bool) or not isinstance(ticket_id, int) or ticket_id <= 0:
        raise ValueError(f"ticket_id must be a positive integer, got {ticket_id!r}")
    if not isinstance(agency_code, str) or not agency_code.strip():
        raise ValueError("agency_code must be a non-empty string")
    if isinstance(link_version, bool) or not isinstance(link_version, int) or link_version < 0:
        raise ValueError(f"link_version must be a non-negative integer, got {link_version!r}")
    return _serializer(secret_key).dumps({"t": ticket_id, "a": agency_code, "v": link_version})


def read_agency_token(secret_key: str | Sequence[str], token: str, max_age_seconds: float, *,
                      now: datetime | None = None) -> AgencyLinkClaims:
    """Verify ``token`` and return its claims; raise LinkInvalid or LinkExpired.

    ``now`` (aware) replaces the clock in tests. A token issued more than a minute in the future is treated as
    invalid, since no honest clock produces it.
    """
    if now is not None and (now.tzinfo is None or now.utcoffset() is None):
        raise ValueError("now must be a timezone-aware datetime")
    if not isinstance(token, str) or not token:
        raise LinkInvalid("empty agency link token")
    try:
        payload, signed_at = _serializer(secret_key).loads(token, return_timestamp=True)
    except BadSignature as exc:
        raise LinkInvalid("agency link signature does not verify") from exc
    claims = _claims_from(payload, signed_at)
    age = ((now or datetime.now(UTC)) - claims.issued_at).total_seconds()
    if age < -CLOCK_SKEW_SECONDS:
        raise LinkInvalid("agency link issued in the future")
    if age > max_age_seconds:
        raise LinkExpired(claims)
    return claims


def _claims_from(payload: object, signed_at: datetime) -> AgencyLinkClaims:
    if not isinstance(payload, dict) or set(payload) != {"t", "a", "v"}:
        raise LinkInvalid("agency link payload has an unexpected shape")
    ticket_id, agency_code, link_version = payload["t"], payload["a"], payload["v"]
    valid = (
        isinstance(ticket_id, int) and not isinstance(ticket_id, bool) and ticket_id > 0
        and isinstance(agency_code, str) and bool(agency_code)
        and isinstance(link_version, int) and not isinstance(link_version, bool) and link_version >= 0
    )
    if not valid:
        raise LinkInvalid("agency link payload has unexpected values")
    issued_at = signed_at if signed_at.tzinfo else signed_at.replace(tzinfo=UTC)
    return AgencyLinkClaims(ticket_id, agency_code, link_version, issued_at.astimezone(UTC))


def agency_link_url(public_base_url: str, token: str) -> str:
    """The absolute link ``<PUBLIC_BASE_URL>/a/<token>``, from configuration only, never a request host."""
    parts = urlsplit(public_base_url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"PUBLIC_BASE_URL must be an http(s) URL, no query or fragment: {public_base_url!r}")
    if not token:
        raise ValueError("token must not be empty")
    return f"{public_base_url.strip().rstrip('/')}{LINK_PATH_PREFIX}{quote(token, safe='-_.')}"
