"""The ticket rules: what each normalized event does to tickets, as a citizen and an operator expect.

- the page's own comments and Messenger echoes never create tickets (no reply loops);
- a Messenger message joins the citizen's open ticket; a reply under a comment joins that comment's ticket;
- an edit updates the text and keeps the previous text in the audit trail; a removal withdraws, never deletes.
Events may arrive out of order (Facebook retries): an edit before its add opens the ticket with the edited
text, and an add after its removal opens the ticket already withdrawn.
"""

from __future__ import annotations

from collections.abc import Callable

from ingest.batch_state import BatchState
from ingest.events import NormalizedEvent
from ingest.grace import release_if_described
from ingest.ratings import (
    ANSWERED,
    MAYBE_NOT_FIXED,
    rated_ticket,
    rating_signal,
    record_rating,
    says_not_fixed,
    ticket_of_page_reply,
)
from ingest.status_requests import only_asks_status, status_request_of
from ntbcare.core.lifecycle import audit, transition
from ntbcare.core.models import Channel, Citizen, RatingValue, Ticket, TicketMessage, TicketStatus

# The ticket the event belongs to (if any), "applied" or "recorded", and why.
Outcome = tuple[Ticket | None, str, str | None]


# Messages that are public comments on Facebook (hidden when they show personal data).
PUBLIC_COMMENT_KINDS = frozenset({"comment", "reply"})

def apply_event(state: BatchState, ev: NormalizedEvent, page_id: str) -> Outcome:
    """Apply one new (not yet seen) event to the tickets in ``state``."""
    if ev.is_from_page or (page_id and ev.author_id == page_id):
        return None, "recorded", "written by the page itself: never a ticket"
    handler = _HANDLERS.get(ev.kind)
    if handler is None:
        return None, "recorded", f"{ev.kind} events do not change tickets"
    return handler(state, ev)


def _citizen(state: BatchState, ev: NormalizedEvent) -> Citizen | None:
    if not ev.author_id:
        return None
    known = state.psid_citizens if ev.source == "messenger" else state.feed_citizens
    citizen = known.get(ev.author_id)
    if citizen is None:
        citizen = Citizen(display_name=ev.author_name)
        if ev.source == "messenger":
            citizen.psid = ev.author_id
        else:
            citizen.fb_user_id = ev.author_id
        state.session.add(citizen)
        known[ev.author_id] = citizen
    elif ev.author_name and citizen.display_name != ev.author_name:
        citizen.display_name = ev.author_name
    return citizen


def _attachments(ev: NormalizedEvent) -> list[dict[str, str | float | None]]:
    return [a.as_record() for a in ev.attachments]


def _open_ticket(state: BatchState, ev: NormalizedEvent, channel: str, kind: str) -> Ticket:
    ticket = Ticket(
        status=TicketStatus.NEW,
        channel=channel,
        text=ev.text or "",
        attachments=_attachments(ev),
        citizen=_citizen(state, ev),
        origin_id=ev.external_id,
        post_id=ev.post_id,
        comment_id=ev.external_id if channel == Channel.COMMENT or ev.payload == "comment" else None,
        psid=ev.author_id if channel == Channel.MESSENGER else None,
        permalink=ev.permalink,
        opened_at=ev.occurred_at,
        last_citizen_message_at=ev.occurred_at,
        messages=[],
    )
    state.session.add(ticket)
    state.new_tickets.append(ticket)
    audit(state.session, ticket, "opened", actor="citizen", to_status=ticket.status,
          detail={"channel": channel, "external_id": ev.external_id})
    _add_message(state, ticket, ev, kind)
    if channel == Channel.MESSENGER and ev.author_id:
        state.open_by_psid[ev.author_id] = ticket
    return ticket


def _add_message(state: BatchState, ticket: Ticket, ev: NormalizedEvent, kind: str) -> TicketMessage:
    message = TicketMessage(external_id=ev.external_id, kind=kind, author_id=ev.author_id, text=ev.text,
                            attachments=_attachments(ev), occurred_at=ev.occurred_at)
    ticket.messages.append(message)
    state.messages[ev.external_id] = message
    return message


def _join(state: BatchState, ticket: Ticket, ev: NormalizedEvent, kind: str) -> None:
    """Add a citizen's further message to an existing ticket."""
    message = _add_message(state, ticket, ev, kind)
    if kind in PUBLIC_COMMENT_KINDS:
        state.changed_comments.append(message)
    ticket.last_citizen_message_at = max(ticket.last_citizen_message_at or ev.occurred_at, ev.occurred_at)
    _refresh_text(ticket)
    audit(state.session, ticket, "message_joined", actor="citizen", detail={"external_id": ev.external_id})
    if ticket.status == TicketStatus.NEW and release_if_described(state.session, ticket):
        state.released.append(ticket)


def _refresh_text(ticket: Ticket) -> None:
    """A ticket's text is everything the citizen wrote, in order; removed messages stay (flagged)."""
    ordered = sorted(ticket.messages, key=lambda m: m.occurred_at)
    ticket.text = "\n".join(m.text for m in ordered if m.text)
    ticket.attachments = [a for m in ordered for a in (m.attachments or [])]


def _open_feed_ticket(state: BatchState, ev: NormalizedEvent, channel: str, kind: str) -> Ticket:
    ticket = _open_ticket(state, ev, channel, kind)
    if ev.external_id in state.removed_ids:
        _mark_removed(state, ticket, state.messages[ev.external_id])
    return ticket


def _on_feed_add(state: BatchState, ev: NormalizedEvent) -> Outcome:
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
        _join(state, ticket, ev, "reply" if ev.is_reply else "comment")
        return ticket, "applied", "joined the ticket of its parent"
    return _open_feed_ticket(state, ev, Channel.COMMENT, "comment"), "applied", None


def _on_reply_to_page(state: BatchState, ticket: Ticket, ev: NormalizedEvent) -> Outcome:
    """A comment under the page's public reply joins that ticket; after an answer, "not fixed" reopens it and a
    reply that only may mean so goes to operators to confirm."""
    _join(state, ticket, ev, "reply")
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


def _on_feed_edit(state: BatchState, ev: NormalizedEvent) -> Outcome:
    message = state.messages.get(ev.external_id)
    if message is None:
        ticket, _, _ = _on_feed_add(state, ev)
        return ticket, "applied", "edit arrived before its add: opened with the edited text"
    ticket = message.ticket
    if message.occurred_at > ev.occurred_at:
        return ticket, "recorded", "an older edit than the text we have"
    previous = message.text
    message.text = ev.text
    message.occurred_at = ev.occurred_at
    _refresh_text(ticket)
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


def _on_feed_remove(state: BatchState, ev: NormalizedEvent) -> Outcome:
    message = state.messages.get(ev.external_id)
    if message is None:
        return None, "recorded", "removal of something we never saw; kept for a late add"
    if message.removed:
        return message.ticket, "recorded", "already removed"
    _mark_removed(state, message.ticket, message)
    return message.ticket, "applied", None


def _on_feed_hide(state: BatchState, ev: NormalizedEvent) -> Outcome:
    message = state.messages.get(ev.external_id)
    if message is None:
        return None, "recorded", "hide/unhide of a comment we never saw"
    message.hidden = ev.kind == "comment.hide"
    audit(state.session, message.ticket, "comment_hidden" if message.hidden else "comment_unhidden",
          detail={"external_id": ev.external_id})
    return message.ticket, "applied", None


def _on_rating(state: BatchState, ev: NormalizedEvent) -> Outcome | None:
    """A rating tap, or "belum selesai" written after an answer: rates (and may reopen) the answered ticket."""
    signal = rating_signal(ev)
    if signal is None or not ev.author_id:
        return None
    ticket = rated_ticket(state.session, ev.author_id, signal.number)
    if ticket is None:
        return None if signal.typed else (None, "recorded", "rating, but no answered ticket of this citizen")
    record_rating(state.session, ticket, signal.value)
    if signal.typed:
        _join(state, ticket, ev, "message")  # the citizen's own words stay with the ticket
    ticket.last_citizen_message_at = max(ticket.last_citizen_message_at or ev.occurred_at, ev.occurred_at)
    if signal.value == RatingValue.NOT_RESOLVED:
        state.reopened.append(ticket)
    return ticket, "applied", f"rating: {signal.value}"


def _on_message(state: BatchState, ev: NormalizedEvent) -> Outcome:
    if ev.external_id in state.messages:
        return None, "recorded", "already known"
    rated = _on_rating(state, ev)
    if rated is not None:
        return rated
    request = status_request_of(ev)
    if request is not None:
        state.status_requests.append(request)
        if ev.payload or only_asks_status(ev):
            return state.open_ticket_of(ev.author_id), "recorded", "status request: answered with the ticket status"
    ticket = state.open_ticket_of(ev.author_id)
    if ticket is None:
        return _open_ticket(state, ev, Channel.MESSENGER, "message"), "applied", None
    _join(state, ticket, ev, "message")
    return ticket, "applied", "joined the citizen's open ticket"


def _on_postback(state: BatchState, ev: NormalizedEvent) -> Outcome:
    request = status_request_of(ev)
    if request is not None:
        state.status_requests.append(request)
    ticket = state.open_ticket_of(ev.author_id)
    if ticket is not None:  # keeps the 24-hour messaging window accurate
        ticket.last_citizen_message_at = max(ticket.last_citizen_message_at or ev.occurred_at, ev.occurred_at)
    return ticket, "recorded", "button taps are kept with the conversation, not as complaint text"


def _on_mention(state: BatchState, ev: NormalizedEvent) -> Outcome:
    """The page tagged elsewhere: a ticket on channel ``mention``, answered under the comment when it is one."""
    existing = state.messages.get(ev.external_id)
    if existing is not None:
        return existing.ticket, "recorded", "already known"
    return _open_ticket(state, ev, Channel.MENTION, "comment" if ev.payload == "comment" else "post"), "applied", None


def _on_message_edit(state: BatchState, ev: NormalizedEvent) -> Outcome:
    """A Messenger edit: the new text replaces the old, which stays in the audit trail."""
    message = state.messages.get(ev.external_id)
    if message is None:
        return None, "recorded", "edit of a message we never saw"
    previous = message.text
    message.text = ev.text
    _refresh_text(message.ticket)
    audit(state.session, message.ticket, "text_edited", actor="citizen",
          detail={"external_id": ev.external_id, "previous": previous, "new": ev.text})
    return message.ticket, "applied", None


def _on_message_unsent(state: BatchState, ev: NormalizedEvent) -> Outcome:
    """An unsent Messenger message stays on the ticket, marked, for the agency to see what changed."""
    message = state.messages.get(ev.external_id)
    if message is None:
        return None, "recorded", "unsent a message we never saw"
    if message.removed:
        return message.ticket, "recorded", "already unsent"
    message.removed = True
    audit(state.session, message.ticket, "message_unsent", actor="citizen", detail={"external_id": ev.external_id})
    return message.ticket, "applied", "message unsent by the citizen"


_HANDLERS: dict[str, Callable[[BatchState, NormalizedEvent], Outcome]] = {
    "comment.add": _on_feed_add,
    "post.add": _on_feed_add,
    "comment.edited": _on_feed_edit,
    "post.edited": _on_feed_edit,
    "comment.remove": _on_feed_remove,
    "post.remove": _on_feed_remove,
    "comment.hide": _on_feed_hide,
    "comment.unhide": _on_feed_hide,
    "message": _on_message,
    "message.edited": _on_message_edit,
    "message.unsent": _on_message_unsent,
    "mention.add": _on_mention,
    "postback": _on_postback,
}
