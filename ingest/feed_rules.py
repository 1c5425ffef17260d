"""What feed events (comments, visitor posts, mentions) do to tickets.

A reply under a comment joins that comment's ticket, a comment under a visitor post that is a ticket joins
it; a writer's next comment on the post joins their ticket while it waits for words (a photo first); after
an answer, such a comment saying it is not fixed reopens the ticket, and under a closed ticket
anything else starts a new one. An edit updates the text and keeps the previous one in the audit trail; a
removal withdraws, never deletes. Events may arrive out of order (Facebook retries): an edit before its add
opens the ticket with the edited text, and an add after its removal opens the ticket already withdrawn.
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


# A ticket in one of these takes no more comments: writing again under it is new writing (a rating or a
# "belum" aside). A withdrawn ticket still takes the replies written before its comment was removed, whenever
# Facebook delivers them, so that out-of-order events end as in-order ones.
WRITE_AGAIN = (TicketStatus.CLOSED, TicketStatus.NOT_COMPLAINT)


def on_feed_add(state: BatchState, ev: NormalizedEvent) -> Outcome:
    existing = state.messages.get(ev.external_id)
    if existing is not None:
        return existing.ticket, "recorded", "already known (an edit arrived first)"
    if ev.kind.startswith("post."):
        return _open_feed_ticket(state, ev, Channel.POST, "post"), "applied", None
    named, under_page_reply = _named_ticket(state, ev)
    kind = "reply" if ev.is_reply else "comment"
    if named is None:
        waiting = state.waiting_comment_ticket_of(ev.author_id, ev.post_id)
        if waiting is not None:  # a photo (or a word or two) first, the words in the next comment
            join(state, waiting, ev, kind)
            return waiting, "applied", "the writer's next comment on the post while their ticket waits: joined"
        return _open_feed_ticket(state, ev, Channel.COMMENT, "comment"), "applied", None
    if named.status in ANSWERED:
        verdict = _verdict_on_the_answer(state, named, ev, kind)
        if verdict is not None:
            return verdict
    if named.status in WRITE_AGAIN:
        return _written_again(state, named, ev, kind)
    join(state, named, ev, kind)
    if named.status in ANSWERED:
        return named, "applied", "joined the answered ticket"
    return named, "applied", ("joined the ticket of the page's reply it answers" if under_page_reply
                              else "joined the ticket of its parent")


def _named_ticket(state: BatchState, ev: NormalizedEvent) -> tuple[Ticket | None, bool]:
    """The ticket a comment's parent names: its parent comment's, else the one whose public reply (an
    acknowledgement or an answer) it is under (True); a top-level comment names a visitor post's ticket.

    Facebook flattens a reply to a reply under the top-level comment, so a citizen answering the page's
    answer mostly names their own comment, seldom the page's reply.
    """
    if not ev.is_reply:
        parent = state.messages.get(ev.post_id or "")
        return (parent.ticket if parent is not None else None), False
    parent = state.messages.get(ev.parent_id or "")
    if parent is not None:
        return parent.ticket, False
    return ticket_of_page_reply(state.session, ev.parent_id), True


def _verdict_on_the_answer(state: BatchState, ticket: Ticket, ev: NormalizedEvent, kind: str) -> Outcome | None:
    """A comment joining an answered or closed ticket, whatever parent it names: "not fixed" rates and reopens
    it, one that only may mean so goes to operators to confirm; None for anything else."""
    if says_not_fixed(ev.text):
        join(state, ticket, ev, kind)
        record_rating(state.session, ticket, RatingValue.NOT_RESOLVED)
        state.reopened.append(ticket)
        return ticket, "applied", "not fixed, after the answer: reopened"
    if MAYBE_NOT_FIXED.search(ev.text or ""):
        join(state, ticket, ev, kind)
        ticket.review_reason = "maybe_not_fixed"
        transition(state.session, ticket, TicketStatus.REVIEW, actor="citizen", action="review",
                   detail={"reason": "maybe_not_fixed", "external_id": ev.external_id})
        return ticket, "applied", "may say it is not fixed: an operator confirms"
    return None


def _written_again(state: BatchState, ended: Ticket, ev: NormalizedEvent, kind: str) -> Outcome:
    """Writing again under a closed ticket starts a new ticket, as in Messenger; the writer's further comments
    there join that new ticket (their open one on this post) rather than each opening another."""
    why = f"written under {ended.number}, which is {ended.status}"
    follow = state.open_comment_ticket_of(ev.author_id, ev.post_id)
    if follow is not None:
        join(state, follow, ev, kind)
        return follow, "applied", f"{why}: joined the writer's open ticket on this post"
    return _open_feed_ticket(state, ev, Channel.COMMENT, "comment"), "applied", f"{why}: a new ticket"


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
