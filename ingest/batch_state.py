"""The rows a batch of events may touch, loaded up front with a handful of ``IN`` queries.

A burst of thousands of deliveries then costs a few statements per hundred deliveries instead of a dozen
per delivery; the ticket rules keep this state current as they apply events, so later events of the same
batch see the tickets and citizens that earlier ones created.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ingest.events import NormalizedEvent, ParsedItem
from ingest.grace import GraceWindow, awaits_text
from ingest.messenger import parse_messaging
from ingest.status_requests import StatusRequest
from ntbcare.core.models import Channel, Citizen, Event, Ticket, TicketHold, TicketMessage, TicketStatus, utcnow

# Removals (and unsent messages) are kept as events, so one that arrives before its add still counts.
REMOVE_KINDS = ("comment.remove", "post.remove", "message.unsent")
EDIT_KIND = "message.edited"
LOOKUP_CHUNK = 500


def _chunked(values: Iterable[str]) -> Iterable[list[str]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), LOOKUP_CHUNK):
        yield ordered[start : start + LOOKUP_CHUNK]


class BatchState:
    """Everything a batch may read, loaded in bulk, then kept current as events are applied."""

    def __init__(self, session: Session, items: Sequence[ParsedItem], grace: GraceWindow | None = None) -> None:
        self.session = session
        # No window given (a plain replay, a test of the rules alone): nothing waits, nothing joins a wait.
        self.grace = grace or GraceWindow(0.0, utcnow())
        events = [i for i in items if isinstance(i, NormalizedEvent)]
        self.seen_keys: set[str] = set()
        for part in _chunked(i.dedup_key for i in items):
            self.seen_keys.update(session.scalars(select(Event.dedup_key).where(Event.dedup_key.in_(part))))
        self.messages: dict[str, TicketMessage] = {}
        self.removed_ids: set[str] = set()
        # Messenger message id -> its newest edit seen so far, applied or waiting for the message to arrive.
        self.latest_edits: dict[str, NormalizedEvent] = {}
        self._load_messages({x for e in events for x in (e.external_id, e.parent_id, e.post_id) if x})
        self.feed_citizens: dict[str, Citizen] = {}
        self.psid_citizens: dict[str, Citizen] = {}
        self.open_by_psid: dict[str, Ticket] = {}
        self._load_citizens({e.author_id for e in events if e.source == "feed" and e.author_id},
                            {e.author_id for e in events if e.source == "messenger" and e.author_id})
        # Feed writer -> their comment tickets that still take messages, oldest first (this batch's new ones last).
        self.comment_tickets: dict[str, list[Ticket]] = {}
        self.holds: dict[int, datetime] = {}  # ticket id -> until, for those comment tickets
        self._load_comment_tickets({e.author_id for e in events if e.kind == "comment.add" and e.author_id})
        self.new_tickets: list[Ticket] = []
        # Known tickets that were waiting for a photo's text and got it: routed now.
        self.released: list[Ticket] = []
        # Answered tickets the citizen says are not fixed ("Belum selesai"): reopened by the pipeline.
        self.reopened: list[Ticket] = []
        self.status_requests: list[StatusRequest] = []
        # Public comments whose text this batch added to a known ticket or edited: checked again for personal data.
        self.changed_comments: list[TicketMessage] = []

    def _load_messages(self, external_ids: set[str]) -> None:
        """Known messages (with their tickets) and removals seen before their add, for these ids."""
        for part in _chunked(external_ids):
            query = (
                select(TicketMessage)
                .where(TicketMessage.external_id.in_(part))
                .options(selectinload(TicketMessage.ticket).selectinload(Ticket.messages))
            )
            self.messages.update((m.external_id, m) for m in self.session.scalars(query))
            removed = select(Event.external_id).where(Event.external_id.in_(part), Event.kind.in_(REMOVE_KINDS))
            self.removed_ids.update(x for x in self.session.scalars(removed) if x)
            edits = select(Event.payload, Event.page_id).where(Event.external_id.in_(part), Event.kind == EDIT_KIND)
            for payload, page_id in self.session.execute(edits):
                self.keep_edit(parse_messaging(payload, page_id or ""))

    def keep_edit(self, edit: ParsedItem) -> bool:
        """Remember a Messenger edit if it is the newest of its message; False for an older one."""
        if not isinstance(edit, NormalizedEvent) or edit.kind != EDIT_KIND:
            return False
        newest = self.latest_edits.get(edit.external_id)
        if newest is not None and not supersedes(edit, newest):
            return False
        self.latest_edits[edit.external_id] = edit
        return True

    def _load_citizens(self, feed_authors: set[str], psids: set[str]) -> None:
        """Citizens by feed user id and by PSID, and each PSID's open ticket (the newest wins)."""
        session = self.session
        for part in _chunked(feed_authors):
            for citizen in session.scalars(select(Citizen).where(Citizen.fb_user_id.in_(part))):
                if citizen.fb_user_id:
                    self.feed_citizens[citizen.fb_user_id] = citizen
        for part in _chunked(psids):
            for citizen in session.scalars(select(Citizen).where(Citizen.psid.in_(part))):
                if citizen.psid:
                    self.psid_citizens[citizen.psid] = citizen
            open_tickets = (
                select(Ticket)
                .where(Ticket.psid.in_(part), Ticket.status.not_in(TicketStatus.FINAL))
                .options(selectinload(Ticket.messages))
                .order_by(Ticket.opened_at)
            )
            for ticket in session.scalars(open_tickets):
                if ticket.psid:
                    self.open_by_psid[ticket.psid] = ticket

    def _load_comment_tickets(self, authors: set[str]) -> None:
        """Each comment writer's open comment tickets and their holds: where their writing again after a close,
        or the words after their photo, go."""
        for part in _chunked(authors):
            query = (
                select(Ticket, Citizen.fb_user_id)
                .join(Citizen, Ticket.citizen_id == Citizen.id)
                .where(Citizen.fb_user_id.in_(part), Ticket.channel == Channel.COMMENT,
                       Ticket.status.not_in(TicketStatus.FINAL))
                .options(selectinload(Ticket.messages))
                .order_by(Ticket.opened_at, Ticket.id)
            )
            ids = []
            for ticket, author in self.session.execute(query):
                if author:
                    self.comment_tickets.setdefault(author, []).append(ticket)
                    ids.append(ticket.id)
            holds = select(TicketHold.ticket_id, TicketHold.until).where(TicketHold.ticket_id.in_(ids))
            self.holds.update((ticket_id, until) for ticket_id, until in self.session.execute(holds))

    def open_comment_ticket_of(self, author: str | None, post_id: str | None) -> Ticket | None:
        """The writer's newest comment ticket on this post that still takes messages and awaits its answer."""
        for ticket in reversed(self.comment_tickets.get(author or "", [])):
            if ticket.post_id == post_id and ticket.status not in (*TicketStatus.FINAL, TicketStatus.ANSWERED):
                return ticket
        return None

    def waiting_comment_ticket_of(self, author: str | None, post_id: str | None) -> Ticket | None:
        """The writer's ticket on this post that waits for words (a photo, a word or two) and whose wait has not
        run out: their next comment there joins it. A ticket this batch opened waits if holds are on at all."""
        for ticket in reversed(self.comment_tickets.get(author or "", [])):
            if ticket.post_id != post_id or ticket.status != TicketStatus.NEW or not awaits_text(ticket.text):
                continue
            if ticket.id is not None and ticket.id in self.holds:
                if self.grace.holds(self.holds[ticket.id]):
                    return ticket
            elif self.grace.seconds > 0 and any(ticket is new for new in self.new_tickets):
                return ticket
        return None

    def open_ticket_of(self, psid: str | None) -> Ticket | None:
        """The citizen's open ticket, unless an earlier event of this batch closed or withdrew it."""
        ticket = self.open_by_psid.get(psid or "")
        return ticket if ticket is not None and ticket.status not in TicketStatus.FINAL else None


def supersedes(edit: NormalizedEvent, newest: NormalizedEvent) -> bool:
    """Whether ``edit`` is newer than ``newest``: by ``num_edit`` when both carry it, else by their time."""
    if edit.edit_number is not None and newest.edit_number is not None:
        return edit.edit_number > newest.edit_number
    return edit.occurred_at >= newest.occurred_at
