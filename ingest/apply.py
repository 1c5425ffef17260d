"""Apply the parsed items of a batch of deliveries to tickets, exactly once, with one flush.

Every item becomes an ``events`` row (applied, recorded or unsupported, with the reason); a redelivered
item changes nothing, because ``events.dedup_key`` and ``ticket_messages.external_id`` are UNIQUE and keys
already stored are skipped. The rows the batch may touch are loaded up front (:mod:`ingest.batch_state`),
the rules of :mod:`ingest.ticket_rules` decide what each event does, and new tickets get their reference
numbers at the end, a few per statement; the photos and files of the new messages are owed for download in
the same flush (:mod:`ingest.attachments`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ingest.attachments import owe_downloads
from ingest.batch_state import REMOVE_KINDS, BatchState
from ingest.events import ParsedItem, UnsupportedItem
from ingest.grace import GraceWindow
from ingest.status_requests import StatusRequest
from ingest.ticket_rules import apply_event
from ntbcare.core.lifecycle import WITA, ensure_ticket_counter, reserve_ticket_numbers
from ntbcare.core.models import Delivery, Event, Ticket, TicketMessage, utcnow


@dataclass
class ApplyResult:
    """What a batch leaves for the caller: the new tickets that need routing and the status questions."""

    new_tickets: list[Ticket]
    status_requests: list[StatusRequest]
    changed_comments: list[TicketMessage]
    released: list[Ticket] = field(default_factory=list)
    reopened: list[Ticket] = field(default_factory=list)

    @property
    def opened_ticket_ids(self) -> list[int]:
        """Ids of the tickets this batch opened (known after the flush), and of those whose wait for a photo's
        text it ended, for the routing job."""
        return [t.id for t in self.new_tickets] + [t.id for t in self.released]

    @property
    def changed_comment_ids(self) -> list[tuple[int, str]]:
        """(ticket id, comment id) of known tickets' public comments added or edited by this batch."""
        return [(m.ticket.id, m.external_id) for m in self.changed_comments if m.ticket.id not in
                {t.id for t in self.new_tickets}]


def apply_batch(
    session: Session, deliveries: Sequence[tuple[int, list[ParsedItem]]], *, page_id: str = "",
    grace: GraceWindow | None = None,
) -> ApplyResult:
    """Apply the items of several deliveries, in order, with one round of lookups and one flush; ``grace`` says
    whether tickets that wait for their words still wait (a writer's next comment joins them)."""
    items_ = [i for _, items in deliveries for i in items]
    received = _received_at(session, [delivery_id for delivery_id, _ in deliveries])
    for year in {moment.astimezone(WITA).year for moment in received.values()}:
        ensure_ticket_counter(session, year, apart=True)  # before any new object (no numberless ticket flushed)
    state = BatchState(session, items_, grace)
    receipt: dict[int, datetime] = {}  # id() of a new ticket -> when the delivery that opened it reached us
    duplicates: dict[int, list[str]] = defaultdict(list)
    with session.no_autoflush:
        for delivery_id, items in deliveries:
            for item in items:
                if _apply_item(state, delivery_id, item, page_id):
                    duplicates[delivery_id].append(item.dedup_key)
                for ticket in state.new_tickets:
                    if id(ticket) not in receipt:  # deadlines count from here (routing), numbers take its year
                        receipt[id(ticket)] = ticket.received_at = received[delivery_id]
        _number_new_tickets(session, state.new_tickets, receipt)
        _note_duplicates(session, deliveries, duplicates)
        owe_downloads(session, [m for m in state.messages.values() if m.id is None])  # this batch's messages
    session.flush()
    return ApplyResult(new_tickets=state.new_tickets, status_requests=state.status_requests,
                       changed_comments=state.changed_comments, released=state.released,
                       reopened=state.reopened)


def _received_at(session: Session, delivery_ids: list[int]) -> dict[int, datetime]:
    """When each delivery reached us; a ticket's number takes its year from that, never from a payload clock."""
    found = dict(session.execute(select(Delivery.id, Delivery.received_at).where(Delivery.id.in_(delivery_ids))).all())
    now = utcnow()
    return {delivery_id: _aware(found.get(delivery_id) or now) for delivery_id in delivery_ids}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _note_duplicates(session: Session, deliveries: Sequence[tuple[int, list[ParsedItem]]],
                     duplicates: dict[int, list[str]]) -> None:
    """A delivery made only of events already stored says so (``duplicate of event …``) instead of nothing."""
    for delivery_id, items in deliveries:
        keys = duplicates.get(delivery_id, [])
        if not items or len(keys) != len(items):
            continue
        delivery = session.get(Delivery, delivery_id)
        if delivery is None:
            continue
        first = session.scalars(select(Event.id).where(Event.dedup_key == keys[0])).first()
        label = f"#{first}" if first is not None else keys[0][:80]
        more = f" and {len(keys) - 1} more" if len(keys) > 1 else ""
        delivery.note = f"duplicate of event {label}{more}"


def _apply_item(state: BatchState, delivery_id: int, item: ParsedItem, page_id: str) -> bool:
    """Record one item as an event row and apply it, unless its key was already stored (a redelivery: True)."""
    if item.dedup_key in state.seen_keys:
        return True
    state.seen_keys.add(item.dedup_key)
    if isinstance(item, UnsupportedItem):
        state.session.add(Event(delivery_id=delivery_id, dedup_key=item.dedup_key, source=item.source,
                                kind=item.shape, page_id=item.page_id, outcome="unsupported", reason=item.reason,
                                payload=item.raw))
        return False
    ticket, outcome, reason = apply_event(state, item, page_id)
    state.session.add(Event(delivery_id=delivery_id, dedup_key=item.dedup_key, source=item.source, kind=item.kind,
                            external_id=item.external_id, page_id=item.page_id, author_id=item.author_id,
                            occurred_at=item.occurred_at, outcome=outcome, reason=reason, payload=item.raw,
                            ticket=ticket))
    if item.kind in REMOVE_KINDS:
        state.removed_ids.add(item.external_id)
    return False


def _number_new_tickets(session: Session, tickets: list[Ticket], receipt: dict[int, datetime]) -> None:
    """Numbers follow the WITA year of the moment the ticket's delivery reached us, in batch order (a payload
    with an old or zero timestamp must not get ``NTB-1970-…``)."""
    by_year: dict[int, list[Ticket]] = defaultdict(list)
    for ticket in tickets:
        by_year[receipt[id(ticket)].astimezone(WITA).year].append(ticket)
    for year, group in by_year.items():
        for ticket, number in zip(group, reserve_ticket_numbers(session, year, len(group), apart=True), strict=True):
            ticket.number = number
