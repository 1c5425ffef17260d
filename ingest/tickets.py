"""Apply normalized events to tickets: the rules a citizen and an operator expect.

- the page's own comments and Messenger echoes never create tickets (no reply loops);
- a redelivered event changes nothing (``events.dedup_key`` and ``ticket_messages.external_id`` are UNIQUE);
- a Messenger message joins the citizen's open ticket; a reply under a comment joins that comment's ticket;
- an edit updates the text and keeps the previous text in the audit trail; a removal withdraws, never deletes.
Events may arrive out of order (Facebook retries): an edit before its add opens the ticket with the edited
text, and an add after its removal opens the ticket already withdrawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ingest.events import NormalizedEvent, ParsedItem, UnsupportedItem
from ntbcare.lifecycle import audit, next_ticket_number, transition
from ntbcare.models import (
    Channel,
    Citizen,
    Event,
    Ticket,
    TicketMessage,
    TicketStatus,
)


@dataclass
class ApplyResult:
    """What one delivery did: counts for the delivery row and the ids of tickets that need routing."""

    applied: int = 0
    recorded: int = 0
    unsupported: int = 0
    duplicates: int = 0
    opened_ticket_ids: list[int] = field(default_factory=list)


def apply_items(session: Session, delivery_id: int, items: list[ParsedItem], *, page_id: str = "") -> ApplyResult:
    """Apply every item of one delivery inside the caller's transaction."""
    result = ApplyResult()
    for item in items:
        if session.scalar(select(Event.id).where(Event.dedup_key == item.dedup_key)) is not None:
            result.duplicates += 1
            continue
        if isinstance(item, UnsupportedItem):
            session.add(_event_row(delivery_id, item, "unsupported", item.reason))
            result.unsupported += 1
            continue
        ticket, outcome, reason, opened = _apply_event(session, item, page_id)
        row = _event_row(delivery_id, item, outcome, reason)
        row.ticket_id = ticket.id if ticket is not None else None
        session.add(row)
        session.flush()
        if outcome == "applied":
            result.applied += 1
        else:
            result.recorded += 1
        if opened and ticket is not None:
            result.opened_ticket_ids.append(ticket.id)
    return result


def _event_row(delivery_id: int, item: ParsedItem, outcome: str, reason: str | None) -> Event:
    if isinstance(item, UnsupportedItem):
        return Event(delivery_id=delivery_id, dedup_key=item.dedup_key, source=item.source, kind=item.shape,
                     page_id=item.page_id, outcome=outcome, reason=reason, payload=item.raw)
    return Event(delivery_id=delivery_id, dedup_key=item.dedup_key, source=item.source, kind=item.kind,
                 external_id=item.external_id, page_id=item.page_id, author_id=item.author_id,
                 occurred_at=item.occurred_at, outcome=outcome, reason=reason, payload=item.raw)


Outcome = tuple[Ticket | None, str, str | None, bool]


def _apply_event(session: Session, ev: NormalizedEvent, page_id: str) -> Outcome:
    if ev.is_from_page or (page_id and ev.author_id == page_id):
        return None, "recorded", "written by the page itself: never a ticket", False
    handler = _HANDLERS.get(ev.kind)
    if handler is None:
        return None, "recorded", f"{ev.kind} events do not change tickets", False
    return handler(session, ev)


def _message(session: Session, external_id: str | None) -> TicketMessage | None:
    if not external_id:
        return None
    return session.scalars(select(TicketMessage).where(TicketMessage.external_id == external_id)).first()


def _citizen(session: Session, ev: NormalizedEvent) -> Citizen | None:
    if not ev.author_id:
        return None
    column = Citizen.psid if ev.source == "messenger" else Citizen.fb_user_id
    citizen = session.scalars(select(Citizen).where(column == ev.author_id)).first()
    if citizen is None:
        citizen = Citizen(display_name=ev.author_name)
        if ev.source == "messenger":
            citizen.psid = ev.author_id
        else:
            citizen.fb_user_id = ev.author_id
        session.add(citizen)
        session.flush()
    elif ev.author_name and citizen.display_name != ev.author_name:
        citizen.display_name = ev.author_name
    return citizen


def _attachments(ev: NormalizedEvent) -> list[dict[str, str | None]]:
    return [{"type": a.type, "url": a.url} for a in ev.attachments]


def _was_removed_earlier(session: Session, external_id: str) -> bool:
    kinds = ("comment.remove", "post.remove")
    query = select(Event.id).where(Event.external_id == external_id, Event.kind.in_(kinds))
    return session.scalar(query) is not None


def _open_ticket(session: Session, ev: NormalizedEvent, channel: str) -> Ticket:
    citizen = _citizen(session, ev)
    ticket = Ticket(
        number=next_ticket_number(session, ev.occurred_at),
        status=TicketStatus.NEW,
        channel=channel,
        text=ev.text or "",
        attachments=_attachments(ev),
        citizen_id=citizen.id if citizen else None,
        origin_id=ev.external_id,
        post_id=ev.post_id,
        comment_id=ev.external_id if channel == Channel.COMMENT else None,
        psid=ev.author_id if channel == Channel.MESSENGER else None,
        permalink=ev.permalink,
        opened_at=ev.occurred_at,
        last_citizen_message_at=ev.occurred_at,
    )
    session.add(ticket)
    session.flush()
    audit(session, ticket, "opened", actor="citizen", to_status=ticket.status,
          detail={"channel": channel, "external_id": ev.external_id})
    return ticket


def _add_message(session: Session, ticket: Ticket, ev: NormalizedEvent, kind: str) -> TicketMessage:
    message = TicketMessage(
        ticket_id=ticket.id, external_id=ev.external_id, kind=kind, author_id=ev.author_id, text=ev.text,
        attachments=_attachments(ev), occurred_at=ev.occurred_at,
    )
    session.add(message)
    session.flush()
    session.refresh(ticket, ["messages"])
    return message


def _refresh_text(ticket: Ticket) -> None:
    """A ticket's text is everything the citizen wrote, in order; removed messages stay (flagged)."""
    ticket.text = "\n".join(m.text for m in ticket.messages if m.text)
    ticket.attachments = [a for m in ticket.messages for a in (m.attachments or [])]


def _open_feed_ticket(session: Session, ev: NormalizedEvent, channel: str, kind: str) -> Ticket:
    ticket = _open_ticket(session, ev, channel)
    _add_message(session, ticket, ev, kind)
    if _was_removed_earlier(session, ev.external_id):
        _mark_removed(session, ticket, _message(session, ev.external_id))
    return ticket


def _on_feed_add(session: Session, ev: NormalizedEvent) -> Outcome:
    existing = _message(session, ev.external_id)
    if existing is not None:
        return existing.ticket, "recorded", "already known (an edit arrived first)", False
    if ev.kind.startswith("post."):
        return _open_feed_ticket(session, ev, Channel.POST, "post"), "applied", None, True
    parent = _message(session, ev.parent_id) if ev.is_reply else _message(session, ev.post_id)
    if parent is not None:
        ticket = parent.ticket
        _add_message(session, ticket, ev, "reply" if ev.is_reply else "comment")
        ticket.last_citizen_message_at = ev.occurred_at
        _refresh_text(ticket)
        audit(session, ticket, "message_joined", actor="citizen", detail={"external_id": ev.external_id})
        return ticket, "applied", "joined the ticket of its parent", False
    return _open_feed_ticket(session, ev, Channel.COMMENT, "comment"), "applied", None, True


def _on_feed_edit(session: Session, ev: NormalizedEvent) -> Outcome:
    message = _message(session, ev.external_id)
    if message is None:
        ticket, _, _, opened = _on_feed_add(session, ev)
        return ticket, "applied", "edit arrived before its add: opened with the edited text", opened
    ticket = message.ticket
    if message.occurred_at > ev.occurred_at:
        return ticket, "recorded", "an older edit than the text we have", False
    previous = message.text
    message.text = ev.text
    message.occurred_at = ev.occurred_at
    _refresh_text(ticket)
    audit(session, ticket, "text_edited", actor="citizen",
          detail={"external_id": ev.external_id, "previous": previous, "new": ev.text})
    return ticket, "applied", None, False


def _mark_removed(session: Session, ticket: Ticket, message: TicketMessage | None) -> None:
    if message is not None:
        message.removed = True
    if message is not None and message.external_id == ticket.origin_id:
        transition(session, ticket, TicketStatus.WITHDRAWN, actor="citizen", action="withdrawn",
                   detail={"external_id": message.external_id, "reason": "removed on Facebook"})
    else:
        audit(session, ticket, "message_removed", actor="citizen",
              detail={"external_id": message.external_id if message else None})


def _on_feed_remove(session: Session, ev: NormalizedEvent) -> Outcome:
    message = _message(session, ev.external_id)
    if message is None:
        return None, "recorded", "removal of something we never saw; kept for a late add", False
    if message.removed:
        return message.ticket, "recorded", "already removed", False
    _mark_removed(session, message.ticket, message)
    return message.ticket, "applied", None, False


def _on_feed_hide(session: Session, ev: NormalizedEvent) -> Outcome:
    message = _message(session, ev.external_id)
    if message is None:
        return None, "recorded", "hide/unhide of a comment we never saw", False
    message.hidden = ev.kind == "comment.hide"
    audit(session, message.ticket, "comment_hidden" if message.hidden else "comment_unhidden",
          detail={"external_id": ev.external_id})
    return message.ticket, "applied", None, False


def _open_ticket_of(session: Session, psid: str | None) -> Ticket | None:
    if not psid:
        return None
    query = (
        select(Ticket)
        .where(Ticket.psid == psid, Ticket.status.not_in(TicketStatus.FINAL))
        .order_by(Ticket.opened_at.desc())
    )
    return session.scalars(query).first()


def _on_message(session: Session, ev: NormalizedEvent) -> Outcome:
    if _message(session, ev.external_id) is not None:
        return None, "recorded", "already known", False
    ticket = _open_ticket_of(session, ev.author_id)
    if ticket is None:
        ticket = _open_ticket(session, ev, Channel.MESSENGER)
        _add_message(session, ticket, ev, "message")
        return ticket, "applied", None, True
    _add_message(session, ticket, ev, "message")
    if ticket.last_citizen_message_at is None or ev.occurred_at > ticket.last_citizen_message_at:
        ticket.last_citizen_message_at = ev.occurred_at
    _refresh_text(ticket)
    audit(session, ticket, "message_joined", actor="citizen", detail={"external_id": ev.external_id})
    return ticket, "applied", "joined the citizen's open ticket", False


def _on_postback(session: Session, ev: NormalizedEvent) -> Outcome:
    ticket = _open_ticket_of(session, ev.author_id)
    if ticket is not None and (ticket.last_citizen_message_at is None
                               or ev.occurred_at > ticket.last_citizen_message_at):
        ticket.last_citizen_message_at = ev.occurred_at  # keeps the 24-hour messaging window accurate
    return ticket, "recorded", "button taps are kept with the conversation, not as complaint text", False


_HANDLERS = {
    "comment.add": _on_feed_add,
    "post.add": _on_feed_add,
    "comment.edited": _on_feed_edit,
    "post.edited": _on_feed_edit,
    "comment.remove": _on_feed_remove,
    "post.remove": _on_feed_remove,
    "comment.hide": _on_feed_hide,
    "comment.unhide": _on_feed_hide,
    "message": _on_message,
    "postback": _on_postback,
}
