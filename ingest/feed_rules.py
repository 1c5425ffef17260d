"""What feed events (comments, visitor posts, mentions) do to tickets.

A reply under a comment joins that comment's ticket, a comment under a visitor post that is a ticket joins
it; an edit updates the text and keeps the previous one in the audit trail; a removal withdraws, never
deletes. Events may arrive out of order (Facebook retries): an edit before its add opens the ticket with the
edited text, and an add after its removal opens the ticket already withdrawn.
"""

from __future__ import annotations

from ingest.batch_state import BatchState
from ingest.events import NormalizedEvent
from ingest.ratings import ANSWERED, MAYBE_NOT_FIXED, record_rating, says_not_fixed, ticket_of_page_reply
from ingest.ticket_rows import PUBLIC_COMMENT_KINDS, Outcome, join, open_ticket, refresh_text
from ntbcare.core.lifecycle import audit, transition
from ntbcare.core.models import Channel, RatingValue, Ticket, TicketMessage, TicketStatus


def _open_feed_ticket(state: BatchState, ev: NormalizedEvent, channel: str, kind: str) -> Ticket:
    ticket = open_ticket(state, ev, channel, kind)
    if ev.external_id in state.removed_ids:
        _mark_removed(state, ticket, state.messages[ev.external_id])
    return ticket


def on_feed_add(state: BatchState, ev: NormalizedEvent) -> Outcome:
    existing = state.messages.get(ev.external_id)
    if existing is not None:
        return existing.ticket, "recorded", "already known (an edit arrived first)"
    if ev.kind.startswith("post."):
        return _open_feed_ticket(state, ev, Channel.POST, "post"), "applied", None
    parent = state.messages.get(ev.parent_id or "") if ev.is_reply else state.messages.get(ev.post_id or "")
    if parent is None and ev.is_reply:
        under_page_reply = ticket_of_page_reply(state.session, ev.parent_id)
        if under_page_reply is not None:
            return _on_reply_to_page(state, under_page_reply, ev)
    if parent is not None:
        ticket = parent.ticket
        join(state, ticket, ev, "reply" if ev.is_reply else "comment")
        return ticket, "applied", "joined the ticket of its parent"
    return _open_feed_ticket(state, ev, Channel.COMMENT, "comment"), "applied", None


def _on_reply_to_page(state: BatchState, ticket: Ticket, ev: NormalizedEvent) -> Outcome:
    """A comment under the page's public reply joins that ticket; after an answer, "not fixed" reopens it and a
    reply that only may mean so goes to operators to confirm."""
    join(state, ticket, ev, "reply")
    if ticket.status not in ANSWERED:
        return ticket, "applied", "joined the ticket of the page's reply it answers"
    if says_not_fixed(ev.text):
        record_rating(state.session, ticket, RatingValue.NOT_RESOLVED)
        state.reopened.append(ticket)
        return ticket, "applied", "not fixed, under the page's answer: reopened"
    if MAYBE_NOT_FIXED.search(ev.text or ""):
        ticket.review_reason = "maybe_not_fixed"
        transition(state.session, ticket, TicketStatus.REVIEW, actor="citizen", action="review",
                   detail={"reason": "maybe_not_fixed", "external_id": ev.external_id})
        return ticket, "applied", "may say it is not fixed: an operator confirms"
    return ticket, "applied", "joined the answered ticket"


def on_feed_edit(state: BatchState, ev: NormalizedEvent) -> Outcome:
    message = state.messages.get(ev.external_id)
    if message is None:
        ticket, _, _ = on_feed_add(state, ev)
        return ticket, "applied", "edit arrived before its add: opened with the edited text"
    ticket = message.ticket
    if message.occurred_at > ev.occurred_at:
        return ticket, "recorded", "an older edit than the text we have"
    previous = message.text
    message.text = ev.text
    message.occurred_at = ev.occurred_at
    refresh_text(ticket)
    if message.kind in PUBLIC_COMMENT_KINDS:
        state.changed_comments.append(message)
    audit(state.session, ticket, "text_edited", actor="citizen",
          detail={"external_id": ev.external_id, "previous": previous, "new": ev.text})
    return ticket, "applied", None


def _mark_removed(state: BatchState, ticket: Ticket, message: TicketMessage) -> None:
    message.removed = True
    if message.external_id == ticket.origin_id:
        transition(state.session, ticket, TicketStatus.WITHDRAWN, actor="citizen", action="withdrawn",
                   detail={"external_id": message.external_id, "reason": "removed on Facebook"})
    else:
        audit(state.session, ticket, "message_removed", actor="citizen", detail={"external_id": message.external_id})


def on_feed_remove(state: BatchState, ev: NormalizedEvent) -> Outcome:
    message = state.messages.get(ev.external_id)
    if message is None:
        return None, "recorded", "removal of something we never saw; kept for a late add"
    if message.removed:
        return message.ticket, "recorded", "already removed"
    _mark_removed(state, message.ticket, message)
    return message.ticket, "applied", None


def on_feed_hide(state: BatchState, ev: NormalizedEvent) -> Outcome:
    message = state.messages.get(ev.external_id)
    if message is None:
        return None, "recorded", "hide/unhide of a comment we never saw"
    message.hidden = ev.kind == "comment.hide"
    audit(state.session, message.ticket, "comment_hidden" if message.hidden else "comment_unhidden",
          detail={"external_id": ev.external_id})
    return message.ticket, "applied", None


def on_mention(state: BatchState, ev: NormalizedEvent) -> Outcome:
    """The page tagged elsewhere: a ticket on channel ``mention``, answered under the comment when it is one."""
    existing = state.messages.get(ev.external_id)
    if existing is not None:
        return existing.ticket, "recorded", "already known"
    return open_ticket(state, ev, Channel.MENTION, "comment" if ev.payload == "comment" else "post"), "applied", None
