"""The ticket rules: what each normalized event does to tickets, as a citizen and an operator expect.

- the page's own comments and Messenger echoes never create tickets (no reply loops);
- feed events (comments, visitor posts, mentions): :mod:`ingest.feed_rules`;
- Messenger events (messages, ratings, status requests, edits, unsent messages): :mod:`ingest.messenger_rules`;
- the rows they write: :mod:`ingest.ticket_rows`.
"""

from __future__ import annotations

from collections.abc import Callable

from ingest.batch_state import BatchState
from ingest.events import NormalizedEvent
from ingest.feed_rules import on_feed_add, on_feed_edit, on_feed_hide, on_feed_remove, on_mention
from ingest.messenger_rules import on_message, on_message_edit, on_message_unsent, on_postback
from ingest.ticket_rows import Outcome

__all__ = ["Outcome", "apply_event"]


def apply_event(state: BatchState, ev: NormalizedEvent, page_id: str) -> Outcome:
    """Apply one new (not yet seen) event to the tickets in ``state``."""
    if ev.is_from_page or (page_id and ev.author_id == page_id):
        return None, "recorded", "written by the page itself: never a ticket"
    handler = _HANDLERS.get(ev.kind)
    if handler is None:
        return None, "recorded", f"{ev.kind} events do not change tickets"
    return handler(state, ev)


_HANDLERS: dict[str, Callable[[BatchState, NormalizedEvent], Outcome]] = {
    "comment.add": on_feed_add,
    "post.add": on_feed_add,
    "comment.edited": on_feed_edit,
    "post.edited": on_feed_edit,
    "comment.remove": on_feed_remove,
    "post.remove": on_feed_remove,
    "comment.hide": on_feed_hide,
    "comment.unhide": on_feed_hide,
    "message": on_message,
    "message.edited": on_message_edit,
    "message.unsent": on_message_unsent,
    "mention.add": on_mention,
    "postback": on_postback,
}
