"""Page ``feed`` changes (comments, visitor posts, Page posts) to NormalizedEvent, one parser per kind.

Adding a feed event means one parser, one ``FEED_PARSERS`` entry, one fixture and one expectation row.
Sample value (facebook-graph.md E1)::

    {"from": {"id": "7300000000000042", "name": "Baiq Nurul"}, "item": "comment", "verb": "add",
     "post_id": "104000000000001_555000000000111", "comment_id": "555000000000111_888000000000001",
     "parent_id": "104000000000001_555000000000111", "message": "Jalan ... rusak parah",
     "created_time": 1767225598, "post": {"permalink_url": "https://www.facebook.com/..."}}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ingest.errors import (
    MalformedPayload,
    PayloadError,
    as_dict,
    content_hash,
    occurred_at,
    read_facebook_id,
    read_text,
    require_facebook_id,
    shape_token,
    unsupported_item,
)
from ingest.events import Attachment, NormalizedEvent, ParsedItem

FeedParser = Callable[[dict[str, Any], str, Any], NormalizedEvent]

# Items that are posts on the Page timeline: "status" also covers multi-photo posts, "post" shows on removals.
POST_ITEMS = ("status", "photo", "video", "post")
# Engagement signals, never complaints.
IGNORED_ITEMS = {
    "reaction": "reaction events are not complaints",
    "like": "likes are not complaints",
    "share": "shares are not complaints",
}
# citizens.display_name holds this many characters; a longer name is cut, not refused.
MAX_NAME = 255
# Facebook sends "edit" for some edits (restfb #749); it means the same as "edited".
VERB_ALIASES = {"edit": "edited"}


def feed_event_key(value: Any) -> tuple[str, str]:
    """The (item, verb) pair a change dispatches on, with verb aliases folded."""
    fields = as_dict(value)
    item = fields.get("item")
    verb = fields.get("verb")
    item_key = item if isinstance(item, str) else ""
    verb_key = verb if isinstance(verb, str) else ""
    return item_key, VERB_ALIASES.get(verb_key, verb_key)


def _version_suffix(value: dict[str, Any]) -> str:
    """Distinguishes two edits (or hides) of one object while keeping a redelivered one identical."""
    return ":" + content_hash(value)[:16]


def _author(value: dict[str, Any], page_id: str) -> tuple[str | None, str | None, bool]:
    """Who wrote it, from ``from`` or the older form's ``sender_id``/``sender_name`` (pages subscribed on older
    app versions); the page's own actions are recognised in both."""
    sender = as_dict(value.get("from"))
    author_id = read_facebook_id(sender, "id", "from.id") or read_facebook_id(value, "sender_id", "sender_id")
    name = read_text(sender, "name") or read_text(value, "sender_name")
    return author_id, name[:MAX_NAME] if name else None, author_id == page_id


def _permalink(value: dict[str, Any]) -> str | None:
    return read_text(as_dict(value.get("post")), "permalink_url")


def _comment_attachments(value: dict[str, Any]) -> tuple[Attachment, ...]:
    return tuple(Attachment(kind, value[kind]) for kind in ("photo", "video") if read_text(value, kind))


def _post_attachments(value: dict[str, Any]) -> tuple[Attachment, ...]:
    attachments: list[Attachment] = []
    link = read_text(value, "link")
    if link and value.get("item") in ("photo", "video"):
        attachments.append(Attachment(value["item"], link))
    photos = value.get("photos")
    if isinstance(photos, list):
        attachments.extend(Attachment("photo", url) for url in photos if isinstance(url, str) and url)
    return tuple(attachments)


def _comment_event(value: dict[str, Any], page_id: str, entry_time: Any, kind: str) -> NormalizedEvent:
    comment_id = require_facebook_id(value, "comment_id", "comment_id")
    post_id = require_facebook_id(value, "post_id", "post_id")
    author_id, author_name, is_from_page = _author(value, page_id)
    dedup_key = f"feed:{kind}:{comment_id}"
    if kind not in ("comment.add", "comment.remove"):
        dedup_key += _version_suffix(value)
    return NormalizedEvent(
        source="feed",
        kind=kind,
        dedup_key=dedup_key,
        external_id=comment_id,
        page_id=page_id,
        occurred_at=occurred_at(value.get("created_time"), entry_time, "created_time"),
        author_id=author_id,
        author_name=author_name,
        text=read_text(value, "message"),
        attachments=_comment_attachments(value),
        post_id=post_id,
        parent_id=read_facebook_id(value, "parent_id", "parent_id"),
        permalink=_permalink(value),
        is_from_page=is_from_page,
        raw=value,
    )


def _post_event(value: dict[str, Any], page_id: str, entry_time: Any, kind: str) -> NormalizedEvent:
    post_id = require_facebook_id(value, "post_id", "post_id")
    author_id, author_name, is_from_page = _author(value, page_id)
    dedup_key = f"feed:{kind}:{post_id}"
    if kind == "post.edited":
        dedup_key += _version_suffix(value)
    return NormalizedEvent(
        source="feed",
        kind=kind,
        dedup_key=dedup_key,
        external_id=post_id,
        page_id=page_id,
        occurred_at=occurred_at(value.get("created_time"), entry_time, "created_time"),
        author_id=author_id,
        author_name=author_name,
        text=read_text(value, "message"),
        attachments=_post_attachments(value),
        post_id=post_id,
        permalink=_permalink(value),
        is_from_page=is_from_page,
        raw=value,
    )


def parse_comment_add(value: dict[str, Any], page_id: str, entry_time: Any) -> NormalizedEvent:
    """A new comment or reply; a top-level one has parent_id == post_id."""
    return _comment_event(value, page_id, entry_time, "comment.add")


def parse_comment_edited(value: dict[str, Any], page_id: str, entry_time: Any) -> NormalizedEvent:
    """The comment's new text; each distinct edit gets its own dedup key."""
    return _comment_event(value, page_id, entry_time, "comment.edited")


def parse_comment_remove(value: dict[str, Any], page_id: str, entry_time: Any) -> NormalizedEvent:
    """The author or the Page deleted the comment (no message, often no from.name)."""
    return _comment_event(value, page_id, entry_time, "comment.remove")


def parse_comment_hide(value: dict[str, Any], page_id: str, entry_time: Any) -> NormalizedEvent:
    """A Page moderator hid the comment."""
    return _comment_event(value, page_id, entry_time, "comment.hide")


def parse_comment_unhide(value: dict[str, Any], page_id: str, entry_time: Any) -> NormalizedEvent:
    """A Page moderator made a hidden comment visible again."""
    return _comment_event(value, page_id, entry_time, "comment.unhide")


def parse_post_add(value: dict[str, Any], page_id: str, entry_time: Any) -> NormalizedEvent:
    """A visitor post (or the Page's own post) with its text and photos/video."""
    return _post_event(value, page_id, entry_time, "post.add")


def parse_post_edited(value: dict[str, Any], page_id: str, entry_time: Any) -> NormalizedEvent:
    """The post's new text; each distinct edit gets its own dedup key."""
    return _post_event(value, page_id, entry_time, "post.edited")


def parse_post_remove(value: dict[str, Any], page_id: str, entry_time: Any) -> NormalizedEvent:
    """The post was deleted."""
    return _post_event(value, page_id, entry_time, "post.remove")


FEED_PARSERS: dict[tuple[str, str], FeedParser] = {
    ("comment", "add"): parse_comment_add,
    ("comment", "edited"): parse_comment_edited,
    ("comment", "remove"): parse_comment_remove,
    ("comment", "hide"): parse_comment_hide,
    ("comment", "unhide"): parse_comment_unhide,
    **{(item, "add"): parse_post_add for item in POST_ITEMS},
    **{(item, "edited"): parse_post_edited for item in POST_ITEMS},
    **{(item, "remove"): parse_post_remove for item in POST_ITEMS},
}


def parse_mention(value: Any, page_id: str, entry_time: Any) -> ParsedItem:
    """A ``mention`` change: a citizen tagged the page in a comment or post elsewhere (a complaint channel)."""
    if not isinstance(value, dict):
        return unsupported_item("feed", "mention:malformed", "mention change value is not an object", value, page_id)
    item, verb = feed_event_key(value)
    shape = f"mention:{shape_token(item)}.{shape_token(verb)}"
    if item not in ("comment", "post", "status", "photo", "video") or verb != "add":
        return unsupported_item("feed", shape, "only new mentions are complaints", value, page_id)
    try:
        post_id = require_facebook_id(value, "post_id", "post_id")
        comment_id = read_facebook_id(value, "comment_id", "comment_id") if item == "comment" else None
        if item == "comment" and comment_id is None:
            raise MalformedPayload("comment_id")
        author_id, author_name, is_from_page = _author(value, page_id)
        external_id = comment_id or post_id
        return NormalizedEvent(
            source="feed", kind="mention.add", dedup_key=f"feed:mention.add:{external_id}", external_id=external_id,
            page_id=page_id, occurred_at=occurred_at(value.get("created_time"), entry_time, "created_time"),
            author_id=author_id, author_name=author_name, text=read_text(value, "message"),
            attachments=_comment_attachments(value) + _post_attachments(value), post_id=post_id,
            parent_id=read_facebook_id(value, "parent_id", "parent_id"), permalink=_permalink(value),
            is_from_page=is_from_page, payload=item, raw=value,
        )
    except PayloadError as error:
        return unsupported_item("feed", f"{shape}:{error.detail}", error.reason, value, page_id)


def _unsupported_reason(item: str, verb: str) -> str:
    if item in IGNORED_ITEMS:
        return IGNORED_ITEMS[item]
    if not item or not verb:
        return "feed change without item or verb"
    return f"feed item {item!r} with verb {verb!r} is not handled"


def parse_feed_change(value: Any, page_id: str, entry_time: Any) -> ParsedItem:
    """One ``changes[].value`` of field ``feed`` (entry id = page_id) to exactly one parsed item."""
    if not isinstance(value, dict):
        reason = "feed change value is not an object"
        return unsupported_item("feed", "feed:malformed", reason, value, page_id)
    item, verb = feed_event_key(value)
    shape = f"feed:{shape_token(item)}.{shape_token(verb)}"
    parser = None if item in IGNORED_ITEMS else FEED_PARSERS.get((item, verb))
    if parser is None:
        return unsupported_item("feed", shape, _unsupported_reason(item, verb), value, page_id)
    try:
        return parser(value, page_id, entry_time)
    except PayloadError as error:
        return unsupported_item("feed", f"{shape}:{error.detail}", error.reason, value, page_id)
