"""Walks a decoded webhook body and parses every item in it, in order.

Meta batches up to 1000 updates per POST and may put several entries, changes and messaging events in
one body (facebook-graph.md §2, §5). Each change, messaging event and standby event yields exactly one
item: a NormalizedEvent or an UnsupportedItem with a reason. Nothing returns early and nothing raises,
whatever JSON arrives, so one odd item can never hide the rest of a batch. Each item is scrubbed
(:mod:`ingest.sanitize`) before its parser sees it, so one unstorable value cannot fail the batch's
transaction either; an entry of another page than ours is refused whole.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ingest.errors import describe, read_id, shape_token, unsupported_item
from ingest.events import NormalizedEvent, ParsedItem
from ingest.feed import parse_feed_change, parse_mention
from ingest.messenger import messaging_event_key, parse_messaging
from ingest.sanitize import NON_FINITE_REASON, is_facebook_id, scrub

ItemParser = Callable[[Any, str, Any], ParsedItem]

MAX_KEY, MAX_EXTERNAL_ID, MAX_AUTHOR_ID = 255, 128, 64
STANDBY_REASON = "another app owns this thread (handover protocol); not ours to answer"


def _parse_change(change: Any, page_id: str, entry_time: Any) -> ParsedItem:
    if not isinstance(change, dict):
        return unsupported_item("feed", "feed:malformed", "change is not an object", change, page_id)
    field_name = change.get("field")
    if field_name == "mention":
        return parse_mention(change.get("value"), page_id, entry_time)
    if field_name != "feed":
        reason = f"page field {describe(field_name)} is not a complaint source"
        return unsupported_item("feed", f"change:{shape_token(field_name)}", reason, change, page_id)
    return parse_feed_change(change.get("value"), page_id, entry_time)


def _parse_standby(event: Any, page_id: str, entry_time: Any) -> ParsedItem:
    key = messaging_event_key(event) or "unknown"
    return unsupported_item("standby", f"standby:{shape_token(key)}", STANDBY_REASON, event, page_id)


# The per-entry lists we read, with the source each one's failures are recorded under.
ENTRY_LISTS: dict[str, tuple[str, ItemParser]] = {
    "changes": ("feed", _parse_change),
    "messaging": ("messenger", parse_messaging),
    "standby": ("standby", _parse_standby),
}


def _parse_scrubbed(source: str, parse_item: ItemParser, event: Any, page_id: str, entry_time: Any) -> ParsedItem:
    """One item, parsed from its storable copy; a non-finite number makes it malformed (nothing to repair)."""
    clean, non_finite = scrub(event)
    if non_finite:
        return unsupported_item(source, f"{source}:malformed", NON_FINITE_REASON, event, page_id)
    item = parse_item(clean, page_id, entry_time)
    if isinstance(item, NormalizedEvent) and _too_long(item):
        reason = "an id or key longer than Facebook sends (and than the database holds)"
        return unsupported_item(source, f"{source}:malformed", reason, event, page_id)
    return item


def _too_long(event: NormalizedEvent) -> bool:
    """Lengths of the columns these values go to (events, ticket_messages, citizens)."""
    return (len(event.dedup_key) > MAX_KEY or len(event.external_id) > MAX_EXTERNAL_ID
            or len(event.author_id or "") > MAX_AUTHOR_ID)


def parse_entry(entry: Any, our_page_id: str = "") -> list[ParsedItem]:
    """Every change / messaging / standby event of one entry, in wire order.

    With ``our_page_id`` set, an entry of any other page is one skipped item: a delivery signed with our app
    secret can still carry another page's events (an app installed on several pages), never our tickets.
    """
    if not isinstance(entry, dict):
        return [unsupported_item("unknown", "entry:malformed", "entry is not an object", entry, None)]
    page_id = read_id(entry, "id")
    if page_id is None or not is_facebook_id(page_id):
        return [unsupported_item("unknown", "entry:malformed", "missing or invalid entry id", entry, None)]
    if our_page_id and page_id != our_page_id:
        reason = f"entry for page {page_id}, not ours"
        return [unsupported_item("unknown", "entry:foreign_page", reason, entry, page_id)]
    list_names = [name for name in entry if name in ENTRY_LISTS]
    if not list_names:
        reason = "entry has neither changes nor messaging"
        return [unsupported_item("unknown", "entry:unknown", reason, entry, page_id)]
    entry_time = entry.get("time")
    items: list[ParsedItem] = []
    for name in list_names:
        source, parse_item = ENTRY_LISTS[name]
        events = entry[name]
        if not isinstance(events, list):
            reason = f"entry {name} is not a list"
            items.append(unsupported_item(source, "entry:malformed", reason, entry, page_id))
            continue
        items.extend(_parse_scrubbed(source, parse_item, event, page_id, entry_time) for event in events)
    return items


def parse_delivery(payload: Any, our_page_id: str = "") -> list[ParsedItem]:
    """Every item of a webhook body (``{"object": "page", "entry": [...]}``), in order; never raises.

    ``our_page_id`` (FB_PAGE_ID, when set) refuses entries of other pages.
    """
    if not isinstance(payload, dict):
        return [unsupported_item("unknown", "delivery:malformed", "body is not a JSON object", payload, None)]
    object_type = payload.get("object")
    if object_type != "page":
        reason = f"object {describe(object_type)} is not 'page'"
        return [unsupported_item("unknown", "delivery:unsupported_object", reason, payload, None)]
    entries = payload.get("entry")
    if not isinstance(entries, list):
        return [unsupported_item("unknown", "delivery:malformed", "missing entry list", payload, None)]
    items: list[ParsedItem] = []
    for entry in entries:
        items.extend(parse_entry(entry, our_page_id))
    return items
