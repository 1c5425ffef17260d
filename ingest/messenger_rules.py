"""What Messenger events do to tickets.

A message joins the citizen's open ticket, else opens one; a rating tap, or a short "belum selesai" after an
answer, rates the answered ticket (and may reopen it) instead of adding complaint text; a ticket number asks
for the ticket's status; an edit replaces the text and keeps the previous one in the audit trail; an unsent
message stays on the ticket, marked, and leaves its text. An edit or an unsend that arrives before its message
ends as in order; an older edit never overwrites a newer one.
"""

from __future__ import annotations

from ingest.batch_state import BatchState
from ingest.events import NormalizedEvent
from ingest.ratings import rated_ticket, rating_signal, record_rating
from ingest.status_requests import only_asks_status, status_request_of
from ingest.ticket_rows import Outcome, join, open_ticket, refresh_text
from ntbcare.core.lifecycle import audit
from ntbcare.core.models import Channel, RatingValue, TicketMessage


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
        _catch_up(state, join(state, ticket, ev, "message"))  # the citizen's own words stay with the ticket
    ticket.last_citizen_message_at = max(ticket.last_citizen_message_at or ev.occurred_at, ev.occurred_at)
    if signal.value == RatingValue.NOT_RESOLVED:
        state.reopened.append(ticket)
    return ticket, "applied", f"rating: {signal.value}"


def on_message(state: BatchState, ev: NormalizedEvent) -> Outcome:
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
        opened = open_ticket(state, ev, Channel.MESSENGER, "message")
        _catch_up(state, state.messages[ev.external_id])
        return opened, "applied", None
    _catch_up(state, join(state, ticket, ev, "message"))
    return ticket, "applied", "joined the citizen's open ticket"


def on_postback(state: BatchState, ev: NormalizedEvent) -> Outcome:
    request = status_request_of(ev)
    if request is not None:
        state.status_requests.append(request)
    ticket = state.open_ticket_of(ev.author_id)
    if ticket is not None:  # keeps the 24-hour messaging window accurate
        ticket.last_citizen_message_at = max(ticket.last_citizen_message_at or ev.occurred_at, ev.occurred_at)
    return ticket, "recorded", "button taps are kept with the conversation, not as complaint text"


def on_message_edit(state: BatchState, ev: NormalizedEvent) -> Outcome:
    """A Messenger edit: the new text replaces the old, which stays in the audit trail. As with comment edits,
    order does not matter: an edit before its message is applied when the message arrives, and an older edit
    (lower ``num_edit``) never overwrites a newer one."""
    message = state.messages.get(ev.external_id)
    if not state.keep_edit(ev):
        return (message.ticket if message else None), "recorded", "an older edit than the text we have"
    if message is None:
        return None, "recorded", "edit before its message: applied when the message arrives"
    _apply_edit(state, message, ev)
    return message.ticket, "applied", None


def on_message_unsent(state: BatchState, ev: NormalizedEvent) -> Outcome:
    """An unsent Messenger message stays on the ticket, marked, for the agency to see what changed; its text
    leaves the ticket's text."""
    message = state.messages.get(ev.external_id)
    if message is None:
        return None, "recorded", "unsent before its message: marked when the message arrives"
    if message.removed:
        return message.ticket, "recorded", "already unsent"
    _unsend(state, message)
    return message.ticket, "applied", "message unsent by the citizen"


def _catch_up(state: BatchState, message: TicketMessage) -> None:
    """A message that arrived after its edit or its unsend ends as if they had come after it."""
    edit = state.latest_edits.get(message.external_id)
    if edit is not None:
        _apply_edit(state, message, edit)
    if message.external_id in state.removed_ids:
        _unsend(state, message)


def _apply_edit(state: BatchState, message: TicketMessage, edit: NormalizedEvent) -> None:
    previous = message.text
    message.text = edit.text
    refresh_text(message.ticket)
    audit(state.session, message.ticket, "text_edited", actor="citizen",
          detail={"external_id": edit.external_id, "previous": previous, "new": edit.text})


def _unsend(state: BatchState, message: TicketMessage) -> None:
    message.removed = True
    refresh_text(message.ticket)
    audit(state.session, message.ticket, "message_unsent", actor="citizen",
          detail={"external_id": message.external_id})
