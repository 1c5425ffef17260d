"""The normalized event: what every parser returns and what the ticket logic consumes.

Parsers turn one raw Facebook item (a feed ``change`` or a Messenger ``messaging`` entry) into
exactly one :class:`NormalizedEvent` or :class:`UnsupportedItem`. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Source = Literal["feed", "messenger"]

# Every kind a parser may emit. Ticket logic switches on these strings; keep them stable.
FEED_KINDS = (
    "comment.add",
    "comment.edited",
    "comment.remove",
    "comment.hide",
    "comment.unhide",
    "post.add",
    "post.edited",
    "post.remove",
    "mention.add",  # the page tagged in a comment or post elsewhere (page field ``mention``)
)
MESSENGER_KINDS = (
    "message",  # text, attachments, quick reply (quick_reply_payload set)
    "message.edited",  # the citizen edited a sent message (``message_edit``)
    "message.unsent",  # the citizen unsent a message (``is_deleted``)
    "postback",
    "echo",
    "read",
    "delivery",
    "reaction",
)
ALL_KINDS = FEED_KINDS + MESSENGER_KINDS


@dataclass(frozen=True)
class Attachment:
    """A photo, video, file, location or shared link the citizen sent; ``url`` may be a temporary CDN link.

    Locations keep their coordinates (``lat``/``long``); shared links and templates keep their title.
    """

    type: str
    url: str | None = None
    title: str | None = None
    lat: float | None = None
    long: float | None = None

    def as_record(self) -> dict[str, str | float | None]:
        """What a ticket keeps of it (JSON); a location gets a map link for operators and agencies."""
        record: dict[str, str | float | None] = {"type": self.type, "url": self.url}
        if self.title:
            record["title"] = self.title
        if self.lat is not None and self.long is not None:
            record.update(lat=self.lat, long=self.long, map_url=map_link(self.lat, self.long))
        return record


def map_link(lat: float, long: float) -> str:
    """An OpenStreetMap link centred on the point, readable without any account."""
    return f"https://www.openstreetmap.org/?mlat={lat:.6f}&mlon={long:.6f}#map=17/{lat:.6f}/{long:.6f}"


@dataclass(frozen=True)
class NormalizedEvent:
    """One thing that happened on the page, in a shape that no longer depends on the payload."""

    source: Source
    kind: str
    # Globally unique key for this occurrence; the events table is UNIQUE on it, so a redelivery is a no-op.
    dedup_key: str
    # The Facebook object this event is about: comment_id, post_id or message mid.
    external_id: str
    page_id: str
    occurred_at: datetime  # timezone-aware UTC
    author_id: str | None = None  # feed from.id, or Messenger sender PSID
    author_name: str | None = None
    text: str | None = None
    attachments: tuple[Attachment, ...] = ()
    # Feed: the post the comment/post belongs to. Messenger: None.
    post_id: str | None = None
    # Feed comments: parent_id as sent (post_id for a top-level comment, the parent comment_id for a reply).
    parent_id: str | None = None
    permalink: str | None = None
    # True for the page's own comments/posts and for Messenger echoes: never a ticket.
    is_from_page: bool = False
    # Quick-reply or postback payload, echo metadata.
    payload: str | None = None
    # Messenger edits: ``num_edit``, which orders the edits of one message (None when Facebook left it out).
    edit_number: int | None = None
    # The raw item, kept for the record.
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_reply(self) -> bool:
        """A comment whose parent is another comment rather than the post."""
        return self.kind.startswith("comment.") and bool(self.parent_id) and self.parent_id != self.post_id


@dataclass(frozen=True)
class UnsupportedItem:
    """An item we recognise as not ours to handle, or cannot parse; recorded with a reason, never retried."""

    source: str  # "feed", "messenger", "standby", or "unknown"
    shape: str  # e.g. "feed:reaction.add", "messenger:optin", "entry:unknown"
    reason: str
    dedup_key: str
    page_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


ParsedItem = NormalizedEvent | UnsupportedItem
