"""The rows the ticket rules write: citizens, tickets, their messages, and a ticket's text kept current.

Shared by the feed rules and the Messenger rules (:mod:`ingest.feed_rules`, :mod:`ingest.messenger_rules`),
which decide *which* ticket an event belongs to; this module only writes what they decided.
"""

from __future__ import annotations

from ingest.batch_state import BatchState
from ingest.events import NormalizedEvent
from ingest.grace import release_if_described
from ntbcare.core.lifecycle import audit
from ntbcare.core.models import Channel, Citizen, Ticket, TicketMessage, TicketStatus

# The ticket the event belongs to (if any), "applied" or "recorded", and why.
Outcome = tuple[Ticket | None, str, str | None]

# Messages that are public comments on Facebook (hidden when they show personal data).
PUBLIC_COMMENT_KINDS = frozenset({"comment", "reply"})


def citizen_of(state: BatchState, ev: NormalizedEvent) -> Citizen | None:
    """The writer, by feed user id or PSID; created on first sight, renamed when Facebook sends a new name."""
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


def open_ticket(state: BatchState, ev: NormalizedEvent, channel: str, kind: str) -> Ticket:
    """A new ticket opened by ``ev``, its first message and the ``opened`` audit entry."""
    ticket = Ticket(
        status=TicketStatus.NEW,
        channel=channel,
        text=ev.text or "",
        attachments=_attachments(ev),
        citizen=citizen_of(state, ev),
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
    add_message(state, ticket, ev, kind)
    if channel == Channel.MESSENGER and ev.author_id:
        state.open_by_psid[ev.author_id] = ticket
    elif channel == Channel.COMMENT and ev.author_id:
        state.comment_tickets.setdefault(ev.author_id, []).append(ticket)
    return ticket


def add_message(state: BatchState, ticket: Ticket, ev: NormalizedEvent, kind: str) -> TicketMessage:
    message = TicketMessage(external_id=ev.external_id, kind=kind, author_id=ev.author_id, text=ev.text,
                            attachments=_attachments(ev), occurred_at=ev.occurred_at)
    ticket.messages.append(message)
    state.messages[ev.external_id] = message
    return message


def join(state: BatchState, ticket: Ticket, ev: NormalizedEvent, kind: str) -> TicketMessage:
    """Add a citizen's further message to an existing ticket."""
    message = add_message(state, ticket, ev, kind)
    if kind in PUBLIC_COMMENT_KINDS:
        state.changed_comments.append(message)
    ticket.last_citizen_message_at = max(ticket.last_citizen_message_at or ev.occurred_at, ev.occurred_at)
    refresh_text(ticket)
    audit(state.session, ticket, "message_joined", actor="citizen", detail={"external_id": ev.external_id})
    if ticket.status == TicketStatus.NEW and release_if_described(state.session, ticket):
        state.released.append(ticket)
    return message


def refresh_text(ticket: Ticket) -> None:
    """A ticket's text is everything the citizen wrote, in order; removed comments stay (flagged), an unsent
    Messenger message leaves it (the text is what is forwarded and classified) but stays on its message row."""
    ordered = sorted((m for m in ticket.messages if not (m.removed and m.kind == "message")),
                     key=lambda m: m.occurred_at)
    ticket.text = "\n".join(m.text for m in ordered if m.text)
    ticket.attachments = [a for m in ordered for a in (m.attachments or [])]
