"""Apply normalized events to tickets: the rules a citizen and an operator expect.

- the page's own comments and Messenger echoes never create tickets (no reply loops);
- a redelivered event changes nothing (``events.dedup_key`` and ``ticket_messages.external_id`` are UNIQUE);
- a Messenger message joins the citizen's open ticket; a reply under a comment joins that comment's ticket;
- an edit updates the text and keeps the previous text in the audit trail; a removal withdraws, never deletes.
Events may arrive out of order (Facebook retries): an edit before its add opens the ticket with the edited
text, and an add after its removal opens the ticket already withdrawn.

A whole batch of deliveries is applied with one round of lookups and one flush: the rows a batch can touch
are loaded up front (a handful of ``IN`` queries) and kept in a :class:`_BatchState`, so a burst of
thousands of deliveries costs a few statements per hundred deliveries instead of a dozen per delivery.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ingest.events import NormalizedEvent, ParsedItem, UnsupportedItem
from ntbcare.core.lifecycle import WITA, audit, ensure_ticket_counter, reserve_ticket_numbers, transition
from ntbcare.core.models import Channel, Citizen, Event, Ticket, TicketMessage, TicketStatus

REMOVE_KINDS = ("comment.remove", "post.remove")
LOOKUP_CHUNK = 500
# "NTB-2026-000123", also typed as "ntb 2026 123" or "#NTB-2026-000123".
TICKET_NUMBER = re.compile(r"\bNTB[\s-]?(20\d\d)[\s-]?(\d{1,6})\b", re.IGNORECASE)
STATUS_PAYLOAD = "STATUS"


@dataclass(frozen=True)
class StatusRequest:
    """A citizen asked in Messenger how a ticket is doing (typed its number, or tapped the status button)."""

    psid: str
    number: str | None
    mid: str


def status_request_of(ev: NormalizedEvent) -> StatusRequest | None:
    """A Messenger message that is a status question: a ticket number with at most a few other words,
    or the STATUS quick reply / postback (payload ``STATUS`` or ``STATUS:<number>``)."""
    if ev.source != "messenger" or not ev.author_id:
        return None
    payload = (ev.payload or "").strip().upper()
    if payload == STATUS_PAYLOAD or payload.startswith(STATUS_PAYLOAD + ":"):
        number = payload.split(":", 1)[1] if ":" in payload else None
        return StatusRequest(ev.author_id, number, ev.external_id)
    match = TICKET_NUMBER.search(ev.text or "")
    if match is None:
        return None
    number = f"NTB-{match.group(1)}-{int(match.group(2)):06d}"
    return StatusRequest(ev.author_id, number, ev.external_id)


def _only_asks_status(ev: NormalizedEvent) -> bool:
    rest = TICKET_NUMBER.sub(" ", ev.text or "")
    return len(re.findall(r"\w{2,}", rest)) <= 4


@dataclass
class ApplyResult:
    """What a batch did: counts for the delivery rows and the new tickets that need routing."""

    applied: int = 0
    recorded: int = 0
    unsupported: int = 0
    duplicates: int = 0
    new_tickets: list[Ticket] = field(default_factory=list)
    status_requests: list[StatusRequest] = field(default_factory=list)

    @property
    def opened_ticket_ids(self) -> list[int]:
        return [t.id for t in self.new_tickets]


def _chunked(values: Iterable[str]) -> Iterable[list[str]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), LOOKUP_CHUNK):
        yield ordered[start : start + LOOKUP_CHUNK]


class _BatchState:
    """Everything a batch may read, loaded in bulk, then kept current as events are applied."""

    def __init__(self, session: Session, items: Sequence[ParsedItem]) -> None:
        self.session = session
        events = [i for i in items if isinstance(i, NormalizedEvent)]
        self.seen_keys: set[str] = set()
        for part in _chunked(i.dedup_key for i in items):
            self.seen_keys.update(session.scalars(select(Event.dedup_key).where(Event.dedup_key.in_(part))))
        ids = {x for e in events for x in (e.external_id, e.parent_id, e.post_id) if x}
        self.messages: dict[str, TicketMessage] = {}
        self.removed_ids: set[str] = set()
        for part in _chunked(ids):
            query = (
                select(TicketMessage)
                .where(TicketMessage.external_id.in_(part))
                .options(selectinload(TicketMessage.ticket).selectinload(Ticket.messages))
            )
            self.messages.update((m.external_id, m) for m in session.scalars(query))
            removed = select(Event.external_id).where(Event.external_id.in_(part), Event.kind.in_(REMOVE_KINDS))
            self.removed_ids.update(session.scalars(removed))
        self.feed_citizens: dict[str, Citizen] = {}
        self.psid_citizens: dict[str, Citizen] = {}
        feed_authors = {e.author_id for e in events if e.source == "feed" and e.author_id}
        psids = {e.author_id for e in events if e.source == "messenger" and e.author_id}
        for part in _chunked(feed_authors):
            self.feed_citizens.update((c.fb_user_id, c) for c in
                                      session.scalars(select(Citizen).where(Citizen.fb_user_id.in_(part))))
        self.open_by_psid: dict[str, Ticket] = {}
        for part in _chunked(psids):
            self.psid_citizens.update((c.psid, c) for c in
                                      session.scalars(select(Citizen).where(Citizen.psid.in_(part))))
            query = (
                select(Ticket)
                .where(Ticket.psid.in_(part), Ticket.status.not_in(TicketStatus.FINAL))
                .options(selectinload(Ticket.messages))
                .order_by(Ticket.opened_at)
            )
            self.open_by_psid.update((t.psid, t) for t in session.scalars(query))  # the newest wins
        self.new_tickets: list[Ticket] = []
        self.status_requests: list[StatusRequest] = []

    def open_ticket_of(self, psid: str | None) -> Ticket | None:
        ticket = self.open_by_psid.get(psid or "")
        return ticket if ticket is not None and ticket.status not in TicketStatus.FINAL else None


def apply_batch(
    session: Session, deliveries: Sequence[tuple[int, list[ParsedItem]]], *, page_id: str = ""
) -> ApplyResult:
    """Apply the items of several deliveries, in order, with one round of lookups and one flush."""
    result = ApplyResult()
    items_ = [i for _, items in deliveries for i in items]
    for year in {i.occurred_at.astimezone(WITA).year for i in items_ if isinstance(i, NormalizedEvent)}:
        ensure_ticket_counter(session, year)  # before any new object, so no savepoint flushes a numberless ticket
    state = _BatchState(session, items_)
    with session.no_autoflush:
        for delivery_id, items in deliveries:
            for item in items:
                _apply_item(state, delivery_id, item, page_id, result)
        _number_new_tickets(session, state.new_tickets)
    session.flush()
    result.new_tickets = state.new_tickets
    result.status_requests = state.status_requests
    return result


def _apply_item(state: _BatchState, delivery_id: int, item: ParsedItem, page_id: str, result: ApplyResult) -> None:
    if item.dedup_key in state.seen_keys:
        result.duplicates += 1
        return
    state.seen_keys.add(item.dedup_key)
    if isinstance(item, UnsupportedItem):
        state.session.add(Event(delivery_id=delivery_id, dedup_key=item.dedup_key, source=item.source,
                                kind=item.shape, page_id=item.page_id, outcome="unsupported", reason=item.reason,
                                payload=item.raw))
        result.unsupported += 1
        return
    ticket, outcome, reason = _apply_event(state, item, page_id)
    state.session.add(Event(delivery_id=delivery_id, dedup_key=item.dedup_key, source=item.source, kind=item.kind,
                            external_id=item.external_id, page_id=item.page_id, author_id=item.author_id,
                            occurred_at=item.occurred_at, outcome=outcome, reason=reason, payload=item.raw,
                            ticket=ticket))
    if item.kind in REMOVE_KINDS:
        state.removed_ids.add(item.external_id)
    if outcome == "applied":
        result.applied += 1
    else:
        result.recorded += 1


def _number_new_tickets(session: Session, tickets: list[Ticket]) -> None:
    by_year: dict[int, list[Ticket]] = defaultdict(list)
    for ticket in tickets:
        by_year[ticket.opened_at.astimezone(WITA).year].append(ticket)
    for year, group in by_year.items():
        for ticket, number in zip(group, reserve_ticket_numbers(session, year, len(group)), strict=True):
            ticket.number = number


Outcome = tuple[Ticket | None, str, str | None]


def _apply_event(state: _BatchState, ev: NormalizedEvent, page_id: str) -> Outcome:
    if ev.is_from_page or (page_id and ev.author_id == page_id):
        return None, "recorded", "written by the page itself: never a ticket"
    handler = _HANDLERS.get(ev.kind)
    if handler is None:
        return None, "recorded", f"{ev.kind} events do not change tickets"
    return handler(state, ev)


def _citizen(state: _BatchState, ev: NormalizedEvent) -> Citizen | None:
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


def _attachments(ev: NormalizedEvent) -> list[dict[str, str | None]]:
    return [{"type": a.type, "url": a.url} for a in ev.attachments]


def _open_ticket(state: _BatchState, ev: NormalizedEvent, channel: str, kind: str) -> Ticket:
    ticket = Ticket(
        status=TicketStatus.NEW,
        channel=channel,
        text=ev.text or "",
        attachments=_attachments(ev),
        citizen=_citizen(state, ev),
        origin_id=ev.external_id,
        post_id=ev.post_id,
        comment_id=ev.external_id if channel == Channel.COMMENT else None,
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


def _add_message(state: _BatchState, ticket: Ticket, ev: NormalizedEvent, kind: str) -> TicketMessage:
    message = TicketMessage(external_id=ev.external_id, kind=kind, author_id=ev.author_id, text=ev.text,
                            attachments=_attachments(ev), occurred_at=ev.occurred_at)
    ticket.messages.append(message)
    state.messages[ev.external_id] = message
    return message


def _refresh_text(ticket: Ticket) -> None:
    """A ticket's text is everything the citizen wrote, in order; removed messages stay (flagged)."""
    ordered = sorted(ticket.messages, key=lambda m: m.occurred_at)
    ticket.text = "\n".join(m.text for m in ordered if m.text)
    ticket.attachments = [a for m in ordered for a in (m.attachments or [])]


def _open_feed_ticket(state: _BatchState, ev: NormalizedEvent, channel: str, kind: str) -> Ticket:
    ticket = _open_ticket(state, ev, channel, kind)
    if ev.external_id in state.removed_ids:
        _mark_removed(state, ticket, state.messages[ev.external_id])
    return ticket


def _on_feed_add(state: _BatchState, ev: NormalizedEvent) -> Outcome:
    existing = state.messages.get(ev.external_id)
    if existing is not None:
        return existing.ticket, "recorded", "already known (an edit arrived first)"
    if ev.kind.startswith("post."):
        return _open_feed_ticket(state, ev, Channel.POST, "post"), "applied", None
    parent = state.messages.get(ev.parent_id or "") if ev.is_reply else state.messages.get(ev.post_id or "")
    if parent is not None:
        ticket = parent.ticket
        _add_message(state, ticket, ev, "reply" if ev.is_reply else "comment")
        ticket.last_citizen_message_at = max(ticket.last_citizen_message_at or ev.occurred_at, ev.occurred_at)
        _refresh_text(ticket)
        audit(state.session, ticket, "message_joined", actor="citizen", detail={"external_id": ev.external_id})
        return ticket, "applied", "joined the ticket of its parent"
    return _open_feed_ticket(state, ev, Channel.COMMENT, "comment"), "applied", None


def _on_feed_edit(state: _BatchState, ev: NormalizedEvent) -> Outcome:
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
    audit(state.session, ticket, "text_edited", actor="citizen",
          detail={"external_id": ev.external_id, "previous": previous, "new": ev.text})
    return ticket, "applied", None


def _mark_removed(state: _BatchState, ticket: Ticket, message: TicketMessage) -> None:
    message.removed = True
    if message.external_id == ticket.origin_id:
        transition(state.session, ticket, TicketStatus.WITHDRAWN, actor="citizen", action="withdrawn",
                   detail={"external_id": message.external_id, "reason": "removed on Facebook"})
    else:
        audit(state.session, ticket, "message_removed", actor="citizen", detail={"external_id": message.external_id})


def _on_feed_remove(state: _BatchState, ev: NormalizedEvent) -> Outcome:
    message = state.messages.get(ev.external_id)
    if message is None:
        return None, "recorded", "removal of something we never saw; kept for a late add"
    if message.removed:
        return message.ticket, "recorded", "already removed"
    _mark_removed(state, message.ticket, message)
    return message.ticket, "applied", None


def _on_feed_hide(state: _BatchState, ev: NormalizedEvent) -> Outcome:
    message = state.messages.get(ev.external_id)
    if message is None:
        return None, "recorded", "hide/unhide of a comment we never saw"
    message.hidden = ev.kind == "comment.hide"
    audit(state.session, message.ticket, "comment_hidden" if message.hidden else "comment_unhidden",
          detail={"external_id": ev.external_id})
    return message.ticket, "applied", None


def _on_message(state: _BatchState, ev: NormalizedEvent) -> Outcome:
    if ev.external_id in state.messages:
        return None, "recorded", "already known"
    request = status_request_of(ev)
    if request is not None:
        state.status_requests.append(request)
        if ev.payload or _only_asks_status(ev):
            return state.open_ticket_of(ev.author_id), "recorded", "status request: answered with the ticket status"
    ticket = state.open_ticket_of(ev.author_id)
    if ticket is None:
        return _open_ticket(state, ev, Channel.MESSENGER, "message"), "applied", None
    _add_message(state, ticket, ev, "message")
    ticket.last_citizen_message_at = max(ticket.last_citizen_message_at or ev.occurred_at, ev.occurred_at)
    _refresh_text(ticket)
    audit(state.session, ticket, "message_joined", actor="citizen", detail={"external_id": ev.external_id})
    return ticket, "applied", "joined the citizen's open ticket"


def _on_postback(state: _BatchState, ev: NormalizedEvent) -> Outcome:
    request = status_request_of(ev)
    if request is not None:
        state.status_requests.append(request)
    ticket = state.open_ticket_of(ev.author_id)
    if ticket is not None:  # keeps the 24-hour messaging window accurate
        ticket.last_citizen_message_at = max(ticket.last_citizen_message_at or ev.occurred_at, ev.occurred_at)
    return ticket, "recorded", "button taps are kept with the conversation, not as complaint text"


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
