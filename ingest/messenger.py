"""Messenger ``messaging[]`` events to NormalizedEvent, one parser per event kind.

Adding an event means one parser, one ``MESSAGING_PARSERS`` entry, one fixture and one expectation row.
Sample event (facebook-graph.md E10)::

    {"sender": {"id": "6543210987654321"}, "recipient": {"id": "104000000000001"},
     "timestamp": 1767240000001, "message": {"mid": "m_Q1w2E3r4T5y6", "text": "Saya mau lapor pungli ..."}}
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ingest.errors import (
    MalformedPayload,
    PayloadError,
    UnsupportedPayload,
    as_dict,
    content_hash,
    occurred_at,
    parse_timestamp,
    read_facebook_id,
    read_id,
    read_text,
    require_facebook_id,
    require_id,
    shape_token,
    to_milliseconds,
    unsupported_item,
)
from ingest.events import Attachment, NormalizedEvent, ParsedItem

MessagingParser = Callable[[dict[str, Any], str, Any], NormalizedEvent]

# A shared link's or template's title is kept up to this many characters.
MAX_TITLE = 500

# Fields every messaging event carries; whatever else is present names the event.
COMMON_FIELDS = frozenset({"sender", "recipient", "timestamp"})
# Event fields in the order they are looked for; an echo is a "message" with is_echo true.
KNOWN_EVENT_FIELDS = ("message", "message_edit", "postback", "read", "delivery", "reaction")
IGNORED_EVENT_REASONS = {
    "optin": "opt-in events are not complaints",
    "referral": "referral events are not complaints",
    "account_linking": "account linking events are not complaints",
    "policy_enforcement": "policy enforcement notices are not complaints",
    "pass_thread_control": "handover events are not complaints",
    "take_thread_control": "handover events are not complaints",
    "request_thread_control": "handover events are not complaints",
}


def messaging_event_key(event: Any) -> str:
    """The name a messaging event dispatches on ("echo" for a message with is_echo), or "" if none."""
    fields = as_dict(event)
    for name in KNOWN_EVENT_FIELDS:
        if name in fields:
            if name == "message" and as_dict(fields[name]).get("is_echo") is True:
                return "echo"
            return name
    return next((name for name in fields if name not in COMMON_FIELDS), "")


def _coordinate(value: Any, limit: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and -limit <= number <= limit else None


def _first_element(payload: dict[str, Any]) -> dict[str, Any]:
    elements = payload.get("elements")
    return as_dict(elements[0]) if isinstance(elements, list) and elements else {}


def _attachment(item: dict[str, Any]) -> Attachment:
    """One ``message.attachments[]`` item, keeping what the citizen sent whatever its type.

    Locations carry ``payload.coordinates``; fallbacks (shared links) a top-level ``title`` and ``url`` (``URL``
    in older payloads); templates a title and link on their first element.
    """
    payload = as_dict(item.get("payload"))
    element = _first_element(payload)
    url = (read_text(payload, "url") or read_text(item, "url") or read_text(item, "URL")
           or read_text(element, "url") or read_text(element, "item_url")
           or read_text(as_dict(element.get("default_action")), "url"))
    title = read_text(item, "title") or read_text(payload, "title") or read_text(element, "title")
    coordinates = as_dict(payload.get("coordinates"))
    lat, long = _coordinate(coordinates.get("lat"), 90), _coordinate(coordinates.get("long"), 180)
    if lat is None or long is None:
        lat = long = None
    return Attachment(read_text(item, "type") or "unknown", url, title[:MAX_TITLE] if title else None, lat, long)


def _attachments(message: dict[str, Any]) -> tuple[Attachment, ...]:
    items = message.get("attachments")
    if not isinstance(items, list):
        return ()
    return tuple(_attachment(item) for item in items if isinstance(item, dict))


def _sender_psid(event: dict[str, Any]) -> str:
    return require_facebook_id(as_dict(event.get("sender")), "id", "sender.id")


def _event_time(event: dict[str, Any], entry_time: Any) -> datetime:
    return occurred_at(event.get("timestamp"), entry_time, "timestamp")


def parse_message(event: dict[str, Any], page_id: str, entry_time: Any) -> NormalizedEvent:
    """A citizen's text and/or attachments; a quick-reply tap carries its payload."""
    message = as_dict(event.get("message"))
    mid = require_id(message, "mid", "message.mid")
    psid = _sender_psid(event)
    if message.get("is_deleted") is True:
        return _unsent(event, mid, psid, page_id, entry_time)
    text = read_text(message, "text")
    attachments = _attachments(message)
    if text is None and not attachments:
        raise UnsupportedPayload("message has neither text nor attachments", "empty")
    return NormalizedEvent(
        source="messenger",
        kind="message",
        dedup_key=f"messenger:message:{mid}",
        external_id=mid,
        page_id=page_id,
        occurred_at=_event_time(event, entry_time),
        author_id=psid,
        text=text,
        attachments=attachments,
        is_from_page=psid == page_id,
        payload=read_text(as_dict(message.get("quick_reply")), "payload"),
        raw=event,
    )


def _unsent(event: dict[str, Any], mid: str, psid: str, page_id: str, entry_time: Any) -> NormalizedEvent:
    """The citizen unsent (deleted) a message: marked on the ticket, never its text."""
    return NormalizedEvent(
        source="messenger",
        kind="message.unsent",
        dedup_key=f"messenger:message_unsent:{mid}",
        external_id=mid,
        page_id=page_id,
        occurred_at=_event_time(event, entry_time),
        author_id=psid,
        is_from_page=psid == page_id,
        raw=event,
    )


def parse_message_edit(event: dict[str, Any], page_id: str, entry_time: Any) -> NormalizedEvent:
    """The citizen edited a sent message (``message_edit {mid, text, num_edit}``); each edit its own key."""
    edit = as_dict(event.get("message_edit"))
    mid = require_id(edit, "mid", "message_edit.mid")
    psid = _sender_psid(event)
    text = read_text(edit, "text")
    if text is None:
        raise MalformedPayload("message_edit.text")
    number = read_id(edit, "num_edit") or content_hash(text)[:16]
    return NormalizedEvent(
        source="messenger",
        kind="message.edited",
        dedup_key=f"messenger:message_edit:{mid}:{number}",
        external_id=mid,
        page_id=page_id,
        occurred_at=_event_time(event, entry_time),
        author_id=psid,
        text=text,
        is_from_page=psid == page_id,
        edit_number=int(number) if number.isdigit() and len(number) <= 9 else None,  # else ordered by time
        raw=event,
    )


def parse_echo(event: dict[str, Any], page_id: str, entry_time: Any) -> NormalizedEvent:
    """A message the Page sent (by us or a human in the inbox); metadata reconciles our own sends."""
    message = as_dict(event.get("message"))
    mid = require_id(message, "mid", "message.mid")
    require_facebook_id(as_dict(event.get("recipient")), "id", "recipient.id")  # no citizen: malformed
    return NormalizedEvent(
        source="messenger",
        kind="echo",
        dedup_key=f"messenger:echo:{mid}",
        external_id=mid,
        page_id=page_id,
        occurred_at=_event_time(event, entry_time),
        author_id=read_facebook_id(as_dict(event.get("sender")), "id", "sender.id"),
        text=read_text(message, "text"),
        attachments=_attachments(message),
        is_from_page=True,
        payload=read_text(message, "metadata"),
        raw=event,
    )


def parse_postback(event: dict[str, Any], page_id: str, entry_time: Any) -> NormalizedEvent:
    """A button, Get Started or menu tap; postbacks before Graph v11.0 have no mid."""
    postback = as_dict(event.get("postback"))
    psid = _sender_psid(event)
    payload = read_text(postback, "payload")
    mid = read_id(postback, "mid")
    if mid is None:
        tapped_at = parse_timestamp(event.get("timestamp"))
        if tapped_at is None:
            raise MalformedPayload("postback.mid (and no timestamp to derive one)")
        mid = "pb_" + content_hash([psid, to_milliseconds(tapped_at), payload])[:32]
    return NormalizedEvent(
        source="messenger",
        kind="postback",
        dedup_key=f"messenger:postback:{mid}",
        external_id=mid,
        page_id=page_id,
        occurred_at=_event_time(event, entry_time),
        author_id=psid,
        text=read_text(postback, "title"),
        is_from_page=psid == page_id,
        payload=payload,
        raw=event,
    )


def _receipt(event: dict[str, Any], page_id: str, entry_time: Any, kind: str) -> NormalizedEvent:
    psid = _sender_psid(event)
    watermark = require_id(as_dict(event.get(kind)), "watermark", f"{kind}.watermark")
    return NormalizedEvent(
        source="messenger",
        kind=kind,
        dedup_key=f"messenger:{kind}:{psid}:{watermark}",
        external_id=f"{psid}:{watermark}",
        page_id=page_id,
        occurred_at=_event_time(event, entry_time),
        author_id=psid,
        is_from_page=psid == page_id,
        raw=event,
    )


def parse_read_receipt(event: dict[str, Any], page_id: str, entry_time: Any) -> NormalizedEvent:
    """The citizen has read everything we sent before ``read.watermark`` (ms)."""
    return _receipt(event, page_id, entry_time, "read")


def parse_delivery_receipt(event: dict[str, Any], page_id: str, entry_time: Any) -> NormalizedEvent:
    """Everything we sent before ``delivery.watermark`` (ms) reached the citizen; mids are in raw."""
    return _receipt(event, page_id, entry_time, "delivery")


def parse_reaction(event: dict[str, Any], page_id: str, entry_time: Any) -> NormalizedEvent:
    """A citizen reacted to (or un-reacted from) a message; payload is "<action>:<reaction>"."""
    reaction = as_dict(event.get("reaction"))
    mid = require_id(reaction, "mid", "reaction.mid")
    psid = _sender_psid(event)
    action = read_text(reaction, "action") or ""
    name = read_text(reaction, "reaction") or ""
    moment = _event_time(event, entry_time)
    return NormalizedEvent(
        source="messenger",
        kind="reaction",
        dedup_key=f"messenger:reaction:{mid}:{action}:{name}:{to_milliseconds(moment)}",
        external_id=mid,
        page_id=page_id,
        occurred_at=moment,
        author_id=psid,
        text=read_text(reaction, "emoji"),
        is_from_page=psid == page_id,
        payload=f"{action}:{name}",
        raw=event,
    )


MESSAGING_PARSERS: dict[str, MessagingParser] = {
    "message": parse_message,
    "message_edit": parse_message_edit,
    "echo": parse_echo,
    "postback": parse_postback,
    "read": parse_read_receipt,
    "delivery": parse_delivery_receipt,
    "reaction": parse_reaction,
}


def parse_messaging(event: Any, page_id: str, entry_time: Any = None) -> ParsedItem:
    """One ``messaging[]`` event of the Page's entry to exactly one parsed item.

    ``entry_time`` (the entry's ``time``) is only the fallback when the event has no usable timestamp.
    """
    if not isinstance(event, dict):
        return unsupported_item(
            "messenger", "messenger:malformed", "messaging event is not an object", event, page_id
        )
    key = messaging_event_key(event)
    parser = MESSAGING_PARSERS.get(key)
    if parser is None:
        if not key:
            return unsupported_item(
                "messenger", "messenger:empty", "messaging event has no event field", event, page_id
            )
        reason = IGNORED_EVENT_REASONS.get(key, f"messaging event {shape_token(key)!r} is not handled")
        return unsupported_item("messenger", f"messenger:{shape_token(key)}", reason, event, page_id)
    try:
        return parser(event, page_id, entry_time)
    except PayloadError as error:
        return unsupported_item("messenger", f"messenger:{key}:{error.detail}", error.reason, event, page_id)
