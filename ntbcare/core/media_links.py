"""Signed, expiring links to a kept attachment (``/media/<token>``), for the pages of operators and agencies.

A token names one attachment (its row id), the ticket whose page showed it, and whom it was made for: ``ops``
(the console) or an agency code with the ticket's ``link_version`` at issue time, so reassigning a ticket or
revoking its links ends that agency's attachment links too. It is signed like the agency links
(HMAC-SHA256, :func:`ntbcare.core.links.signer`) under a salt of its own and lasts ``MEDIA_LINK_SECONDS``;
a page shown again makes fresh ones. The server still checks every claim against the database. Every failure,
whatever its cause, reads the same (None), so the answer never tells a forged link from an old one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from itsdangerous import BadSignature

from ntbcare.core.links import CLOCK_SKEW_SECONDS, signer

MEDIA_SALT = "ticket-media-link"
MEDIA_PATH_PREFIX = "/media/"
MEDIA_LINK_SECONDS = 3600
OPS = "ops"


@dataclass(frozen=True)
class MediaClaims:
    """A valid token: which attachment, shown on which ticket's page, for whom (``ops`` or an agency code)."""

    media_id: int
    ticket_id: int
    audience: str
    link_version: int


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def make_media_token(secret_key: str | Sequence[str], media_id: int, ticket_id: int, audience: str,
                     link_version: int = 0) -> str:
    """A URL-safe token for one attachment on one ticket's page, for ``ops`` or an agency at ``link_version``."""
    if not (_whole(media_id) and _whole(ticket_id) and _whole(link_version)) or not audience:
        raise ValueError("media_id, ticket_id and link_version must be whole numbers and audience non-empty")
    return signer(secret_key, MEDIA_SALT).dumps({"m": media_id, "t": ticket_id, "a": audience, "v": link_version})


def read_media_token(secret_key: str | Sequence[str], token: str, *, now: datetime | None = None,
                     max_age_seconds: float = MEDIA_LINK_SECONDS) -> MediaClaims | None:
    """The claims of a genuine token younger than ``max_age_seconds``; None for anything else."""
    if not isinstance(token, str) or not token or len(token) > 1000:
        return None
    try:
        payload, signed_at = signer(secret_key, MEDIA_SALT).loads(token, return_timestamp=True)
    except BadSignature:
        return None
    if not isinstance(payload, dict) or set(payload) != {"m", "t", "a", "v"}:
        return None
    media_id, ticket_id, audience, version = payload["m"], payload["t"], payload["a"], payload["v"]
    if not (_whole(media_id) and _whole(ticket_id) and _whole(version) and isinstance(audience, str) and audience):
        return None
    issued = signed_at if signed_at.tzinfo else signed_at.replace(tzinfo=UTC)
    age = ((now or datetime.now(UTC)) - issued).total_seconds()
    if age < -CLOCK_SKEW_SECONDS or age > max_age_seconds:
        return None
    return MediaClaims(media_id, ticket_id, audience, version)


def media_path(token: str) -> str:
    """The link's path, ``/media/<token>``: relative, for the service's own pages."""
    return f"{MEDIA_PATH_PREFIX}{quote(token, safe='-_.')}"
