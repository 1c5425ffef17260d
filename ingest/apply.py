"""Apply the parsed items of a batch of deliveries to tickets, exactly once, with one flush.

Every item becomes an ``events`` row (applied, recorded or unsupported, with the reason); a redelivered
item changes nothing, because ``events.dedup_key`` and ``ticket_messages.external_id`` are UNIQUE and keys
already stored are skipped. The rows the batch may touch are loaded up front (:mod:`ingest.batch_state`),
the rules of :mod:`ingest.ticket_rules` decide what each event does, and new tickets get their reference
numbers at the end, a few per statement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ingest.batch_state import REMOVE_KINDS, BatchState
from ingest.events import NormalizedEvent, ParsedItem, UnsupportedItem
from ingest.status_requests import StatusRequest
from ingest.ticket_rules import apply_event
from ntbcare.core.lifecycle import WITA, ensure_ticket_counter, reserve_ticket_numbers
from ntbcare.core.models import Event, Ticket, TicketMessage


@dataclass
class ApplyResult:
    """What a batch leaves for the caller: the new tickets that need routing and the status questions."""

    new_tickets: list[Ticket]
    status_requests: list[StatusRequest]
    changed_comments: list[TicketMessage]

    @property
    def opened_ticket_ids(self) -> list[int]:
        """Ids of the tickets this batch opened (known after the flush), for the routing job."""
        return [t.id for t in self.new_tickets]

    @property
    def changed_comment_ids(self) -> list[tuple[int, str]]:
        """(ticket id, comment id) of known tickets' public comments added or edited by this batch."""
        return [(m.ticket.id, m.external_id) for m in self.changed_comments if m.ticket.id not in
                {t.id for t in self.new_tickets}]


def apply_batch(
    session: Session, deliveries: Sequence[tuple[int, list[ParsedItem]]], *, page_id: str = ""
) -> ApplyResult:
    """Apply the items of several deliveries, in order, with one round of lookups and one flush."""
    items_ = [i for _, items in deliveries for i in items]
    for year in {i.occurred_at.astimezone(WITA).year for i in items_ if isinstance(i, NormalizedEvent)}:
        ensure_ticket_counter(session, year)  # before any new object, so no savepoint flushes a numberless ticket
    state = BatchState(session, items_)
    with session.no_autoflush:
        for delivery_id, items in deliveries:
            for item in items:
                _apply_item(state, delivery_id, item, page_id)
        _number_new_tickets(session, state.new_tickets)
    session.flush()
    return ApplyResult(new_tickets=state.new_tickets, status_requests=state.status_requests,
                       changed_comments=state.changed_comments)


def _apply_item(state: BatchState, delivery_id: int, item: ParsedItem, page_id: str) -> None:
    """Record one item as an event row and apply it, unless its key was already stored (a redelivery)."""
    if item.dedup_key in state.seen_keys:
        return
    state.seen_keys.add(item.dedup_key)
    if isinstance(item, UnsupportedItem):
        state.session.add(Event(delivery_id=delivery_id, dedup_key=item.dedup_key, source=item.source,
                                kind=item.shape, page_id=item.page_id, outcome="unsupported", reason=item.reason,
                                payload=item.raw))
        return
    ticket, outcome, reason = apply_event(state, item, page_id)
    state.session.add(Event(delivery_id=delivery_id, dedup_key=item.dedup_key, source=item.source, kind=item.kind,
                            external_id=item.external_id, page_id=item.page_id, author_id=item.author_id,
                            occurred_at=item.occurred_at, outcome=outcome, reason=reason, payload=item.raw,
                            ticket=ticket))
    if item.kind in REMOVE_KINDS:
        state.removed_ids.add(item.external_id)


def _number_new_tickets(session: Session, tickets: list[Ticket]) -> None:
    """Numbers follow the WITA year of the moment the citizen wrote (``opened_at``), in batch order."""
    by_year: dict[int, list[Ticket]] = defaultdict(list)
    for ticket in tickets:
        by_year[ticket.opened_at.astimezone(WITA).year].append(ticket)
    for year, group in by_year.items():
        for ticket, number in zip(group, reserve_ticket_numbers(session, year, len(group)), strict=True):
            ticket.number = number
