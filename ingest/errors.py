"""Reading untrusted payload values, and the two ways an item can fail to become an event.

Facebook payloads are JSON we do not control: ids arrive as strings or numbers, timestamps in seconds
or milliseconds, fields go missing. The readers here coerce what can be coerced and raise
:class:`MalformedPayload` (a known shape lacking something we need) or :class:`UnsupportedPayload` (a shape
we deliberately ignore) for the rest. The parsers' dispatch functions turn both into an
:class:`~ingest.events.UnsupportedItem`, so no exception ever leaves the ingest package.
Everything is pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.events import UnsupportedItem
from ingest.sanitize import is_facebook_id, scrub

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Facebook mixes seconds (feed, entry.time) and milliseconds (Messenger); no real second count is this large.
MILLISECONDS_THRESHOLD = 10**12
_NUMERIC_TIMESTAMP = re.compile(r"[0-9]{1,20}(\.[0-9]{1,6})?")
# Short enough that every shape fits the 64-character events.kind column.
_SHAPE_TOKEN = re.compile(r"[a-z0-9_. -]{1,24}")
_DESCRIBE_LIMIT = 60


class PayloadError(Exception):
    """An item that cannot become a NormalizedEvent; ``detail`` ends the UnsupportedItem shape."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class MalformedPayload(PayloadError):
    """A shape we handle, missing a field we need: kept for operators, never retried."""

    def __init__(self, field_name: str) -> None:
        super().__init__(f"missing or invalid {field_name}", "malformed")


class InvalidFacebookId(PayloadError):
    """An id that does not look like a Facebook object id; it could reach a Graph API path, so no ticket."""

    def __init__(self, field_name: str, value: str) -> None:
        super().__init__(f"{field_name} {describe(value)} is not a Facebook id", "malformed")


class UnsupportedPayload(PayloadError):
    """A shape we recognise and deliberately ignore."""


def canonical_json(value: Any) -> str:
    """Serialise the same JSON value to the same text however its keys were ordered on the wire."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        # Only reachable for Python objects that json.loads never produces; still must not raise.
        try:
            return repr(value)
        except (ValueError, RecursionError):
            return "<unserialisable>"


def content_hash(value: Any) -> str:
    """Full sha256 hex of the canonical JSON, used to tell apart otherwise identical-looking events."""
    return hashlib.sha256(canonical_json(value).encode("utf-8", "surrogatepass")).hexdigest()


def unsupported_item(source: str, shape: str, reason: str, raw: Any, page_id: str | None) -> UnsupportedItem:
    """Record an item we will not turn into an event, with a key that is stable across redeliveries."""
    raw_record = scrub(raw if isinstance(raw, dict) else {"value": raw})[0]  # storable on every database
    key = "unsupported:" + content_hash([page_id, source, raw])
    return UnsupportedItem(
        source=source, shape=shape, reason=reason, dedup_key=key, page_id=page_id, raw=raw_record
    )


def shape_token(value: Any) -> str:
    """A payload string safe to embed in a shape name; anything odd becomes ``unknown``."""
    if isinstance(value, str) and _SHAPE_TOKEN.fullmatch(value):
        return value.replace(" ", "_")
    return "unknown"


def describe(value: Any) -> str:
    """A short repr of a payload value for a human-readable reason."""
    text = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    return text if len(text) <= _DESCRIBE_LIMIT else text[: _DESCRIBE_LIMIT - 3] + "..."


def as_dict(value: Any) -> dict[str, Any]:
    """The value if it is a JSON object, else an empty one, so optional sub-objects can be read safely."""
    return value if isinstance(value, dict) else {}


def read_id(mapping: Any, key: str) -> str | None:
    """An id as a string; Facebook sometimes sends ids (and app ids) as JSON numbers."""
    value = as_dict(mapping).get(key)
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # more digits than Python will print; no real id looks like that
            return None
    return None


def require_id(mapping: Any, key: str, field_name: str) -> str:
    """An id the shape cannot do without; its absence makes the item malformed."""
    value = read_id(mapping, key)
    if value is None:
        raise MalformedPayload(field_name)
    return value


def require_facebook_id(mapping: Any, key: str, field_name: str) -> str:
    """A post, comment, sender or recipient id the shape needs, which must look like a Facebook id."""
    value = require_id(mapping, key, field_name)
    if not is_facebook_id(value):
        raise InvalidFacebookId(field_name, value)
    return value


def read_facebook_id(mapping: Any, key: str, field_name: str) -> str | None:
    """An optional Facebook id: absent is fine, present and malformed makes the item malformed."""
    value = read_id(mapping, key)
    if value is not None and not is_facebook_id(value):
        raise InvalidFacebookId(field_name, value)
    return value


def read_text(mapping: Any, key: str) -> str | None:
    """Optional citizen text; empty or non-string text counts as absent (photo-only, sticker-only)."""
    value = as_dict(mapping).get(key)
    return value if isinstance(value, str) and value else None


def parse_timestamp(value: Any) -> datetime | None:
    """A UTC datetime from int/float/numeric-string seconds or milliseconds; None when unusable."""
    number: int | float
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        number = value
    elif isinstance(value, str) and _NUMERIC_TIMESTAMP.fullmatch(value):
        number = float(value) if "." in value else int(value)
    else:
        return None
    if number <= 0:
        return None
    milliseconds = number if number > MILLISECONDS_THRESHOLD else number * 1000
    try:
        return EPOCH + timedelta(milliseconds=milliseconds)
    except OverflowError:
        return None


def occurred_at(value: Any, entry_time: Any, field_name: str) -> datetime:
    """The item's own timestamp, else the entry's delivery time; never an invented one."""
    moment = parse_timestamp(value) or parse_timestamp(entry_time)
    if moment is None:
        raise MalformedPayload(f"{field_name} (and no usable entry time)")
    return moment


def to_milliseconds(moment: datetime) -> int:
    """Milliseconds since the epoch, the unit used inside Messenger dedup keys whatever unit was sent."""
    return (moment - EPOCH) // timedelta(milliseconds=1)
