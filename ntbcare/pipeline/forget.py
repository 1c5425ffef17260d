"""Forgetting a citizen on request (UU 27/2022 on personal data protection, the right to erasure).

``ntbcare citizens forget ID`` finds the citizen by our citizen id, their Facebook user id, their Messenger
PSID or the number of a ticket they wrote, and in one transaction replaces everything personal with a marker:
their name and Facebook ids, the text and attachments of their tickets and messages, the normalized events'
payloads, the texts kept in the tickets' history and in the routing examples, the targets and texts of replies
to them (open ones become undeliverable), the raw bodies of the deliveries their events came from, and their
photos and files: the ``ticket_media`` rows go in the transaction, the files in MEDIA_DIR right after it
commits (a file another citizen's identical attachment still uses stays).
The tickets stay, with number, channel, agency, status, deadlines and dates, so the statistics still count
them; each is audited as ``citizen_forgotten`` by the operator who asked, with counts only.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from ntbcare.core.db import Database
from ntbcare.core.lifecycle import audit
from ntbcare.core.media_store import MediaStore
from ntbcare.core.models import (
    AuditEntry,
    Citizen,
    Delivery,
    Event,
    MediaFile,
    Reply,
    ReplyStatus,
    RoutingDecision,
    Ticket,
    TicketMessage,
)
from ntbcare.pipeline.media import discard_unreferenced

MARKER = "[dihapus atas permintaan warga]"
TICKET_NUMBER = re.compile(r"NTB-\d{4}-\d{6}", re.IGNORECASE)
TEXT_KEYS = frozenset({"previous", "new", "text", "answer", "name", "message"})
ID_KEYS = frozenset({"external_id", "psid", "comment_id", "recipient", "author_id", "from"})
CLASSIFICATION_KEPT = ("complaint", "agency", "confidence", "candidates", "location", "urgent", "abstain_reason")


class CitizenNotFound(LookupError):
    """No citizen has that id, Facebook user id or PSID."""


@dataclass
class ForgetReport:
    citizen_ids: list[int] = field(default_factory=list)
    tickets: list[str] = field(default_factory=list)
    messages: int = 0
    events: int = 0
    deliveries: int = 0
    replies: int = 0
    history_entries: int = 0
    routing_examples: int = 0
    media: int = 0
    media_files_deleted: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_ticket_number(session: Session, ident: str) -> str:
    """A ticket number (``NTB-2026-000123``, what citizens quote) as the id of whoever wrote it; else ``ident``."""
    if not TICKET_NUMBER.fullmatch(ident.strip()):
        return ident
    ticket = session.scalars(select(Ticket).where(Ticket.number == ident.strip().upper())).first()
    if ticket is not None and ticket.citizen_id is not None:
        return str(ticket.citizen_id)
    if ticket is not None and ticket.psid:
        return ticket.psid
    raise CitizenNotFound(f"no ticket {ident!r} with a known author: check `ntbcare tickets show NUMBER`")


def find_citizens(session: Session, ident: str) -> list[Citizen]:
    """Citizens matching ``ident``: our id (a short number), a Facebook user id or a PSID."""
    ident = ident.strip()
    conditions = [Citizen.fb_user_id == ident, Citizen.psid == ident]
    if ident.isdigit() and len(ident) < 10:  # Facebook's ids are 15 digits and more
        conditions.append(Citizen.id == int(ident))
    citizens = list(session.scalars(select(Citizen).where(or_(*conditions)).order_by(Citizen.id)))
    known = {citizen.id for citizen in citizens}
    # A Messenger ticket may carry the PSID before any citizen row linked it.
    for citizen_id in session.scalars(select(Ticket.citizen_id).where(Ticket.psid == ident)):
        if citizen_id is not None and citizen_id not in known:
            citizens.append(session.get_one(Citizen, citizen_id))
            known.add(citizen_id)
    return citizens


def forget_citizen(db: Database, ident: str, *, actor: str, media_dir: str | None = None) -> ForgetReport:
    """Erase the personal data of the citizen ``ident`` names; raises :class:`CitizenNotFound`. The kept files
    of their attachments are deleted from ``media_dir`` (MEDIA_DIR) once the erasure is committed."""
    report = ForgetReport()
    paths: list[str] = []
    with db.scope() as session:
        ident = resolve_ticket_number(session, ident)
        citizens = find_citizens(session, ident)
        known = {value for citizen in citizens for value in (citizen.fb_user_id, citizen.psid) if value}
        facebook_ids = known | ({ident.strip()} - {""})
        tickets = list(session.scalars(select(Ticket).where(or_(
            Ticket.citizen_id.in_([c.id for c in citizens]), Ticket.psid.in_(facebook_ids))).order_by(Ticket.id)))
        if not citizens and not tickets:
            raise CitizenNotFound(f"no citizen has the id, Facebook user id or PSID {ident!r}: check "
                                  "`ntbcare tickets show NUMBER --json` (citizen, facebook.psid)")
        ticket_ids = [t.id for t in tickets]
        for citizen in citizens:
            citizen.display_name, citizen.fb_user_id, citizen.psid = None, None, None
            report.citizen_ids.append(citizen.id)
        session.flush()  # the unique ids are free before the messages' and tickets' are rewritten
        for ticket in tickets:
            _forget_ticket(ticket)
            report.tickets.append(ticket.number)
        report.media, paths = _forget_media(session, ticket_ids, facebook_ids)
        report.messages = _forget_messages(session, ticket_ids, facebook_ids)
        report.events, report.deliveries = _forget_events(session, ticket_ids, facebook_ids)
        report.replies = _forget_replies(session, ticket_ids, facebook_ids)
        report.history_entries = _forget_history(session, ticket_ids)
        decisions = session.scalars(select(RoutingDecision).where(RoutingDecision.ticket_id.in_(ticket_ids))).all()
        for decision in decisions:
            decision.text = MARKER
        report.routing_examples = len(decisions)
        counts = {key: value for key, value in report.as_dict().items()
                  if key not in {"tickets", "media_files_deleted"}}
        for ticket in tickets:
            audit(session, ticket, "citizen_forgotten", actor=actor, detail=counts)
        if not tickets:
            audit(session, None, "citizen_forgotten", actor=actor, detail=counts)
    if paths and media_dir is not None:
        with db.session() as session:
            report.media_files_deleted = discard_unreferenced(session, MediaStore(media_dir), paths)
    return report


def _forget_media(session: Session, ticket_ids: list[int], facebook_ids: set[str]) -> tuple[int, list[str]]:
    """Delete the attachment rows of their tickets and messages; the kept files' paths, to delete after commit."""
    messages = select(TicketMessage.id).where(or_(TicketMessage.ticket_id.in_(ticket_ids),
                                                  TicketMessage.author_id.in_(facebook_ids)))
    rows = session.scalars(select(MediaFile).where(or_(MediaFile.ticket_id.in_(ticket_ids),
                                                       MediaFile.message_id.in_(messages)))).all()
    paths = [media.stored_path for media in rows if media.stored_path]
    for media in rows:
        session.delete(media)
    session.flush()
    return len(rows), paths


def _forget_ticket(ticket: Ticket) -> None:
    ticket.text, ticket.attachments, ticket.psid, ticket.permalink = MARKER, [], None, None
    ticket.origin_id, ticket.comment_id, ticket.post_id = f"forgotten:{ticket.id}", None, None
    if ticket.classification:
        ticket.classification = {k: v for k, v in ticket.classification.items() if k in CLASSIFICATION_KEPT}


def _forget_messages(session: Session, ticket_ids: list[int], facebook_ids: set[str]) -> int:
    messages = session.scalars(select(TicketMessage).where(or_(
        TicketMessage.ticket_id.in_(ticket_ids), TicketMessage.author_id.in_(facebook_ids)))).all()
    for message in messages:
        message.text, message.attachments, message.author_id = MARKER, [], None
        message.external_id = f"forgotten:{message.id}"
    return len(messages)


def _forget_events(session: Session, ticket_ids: list[int], facebook_ids: set[str]) -> tuple[int, int]:
    events = session.scalars(select(Event).where(or_(
        Event.ticket_id.in_(ticket_ids), Event.author_id.in_(facebook_ids)))).all()
    delivery_ids = sorted({event.delivery_id for event in events})
    for event in events:
        event.payload, event.author_id, event.external_id = {"forgotten": True}, None, None
        event.dedup_key = "forgotten:" + hashlib.sha256(event.dedup_key.encode()).hexdigest()  # it names the comment
        if event.reason:
            event.reason = MARKER
    if delivery_ids:
        session.execute(update(Delivery).where(Delivery.id.in_(delivery_ids)).values(body=b""))
    return len(events), len(delivery_ids)


def _forget_replies(session: Session, ticket_ids: list[int], facebook_ids: set[str]) -> int:
    """The replies of their tickets, and the ticketless status answers sent to their Messenger id."""
    replies = session.scalars(select(Reply).where(or_(
        Reply.ticket_id.in_(ticket_ids), (Reply.ticket_id.is_(None) & Reply.target_id.in_(facebook_ids))))).all()
    for reply in replies:
        reply.text, reply.target_id = MARKER, "forgotten"
        if reply.status in ReplyStatus.OPEN:
            reply.status, reply.error, reply.next_attempt_at = ReplyStatus.UNDELIVERABLE, "citizen forgotten", None
    return len(replies)


def _forget_history(session: Session, ticket_ids: list[int]) -> int:
    changed = 0
    for entry in session.scalars(select(AuditEntry).where(AuditEntry.ticket_id.in_(ticket_ids))):
        detail = dict(entry.detail or {})
        scrubbed = {key: (MARKER if key in TEXT_KEYS else None if key in ID_KEYS else value)
                    for key, value in detail.items()}
        if scrubbed != detail:
            entry.detail = scrubbed
            changed += 1
    return changed
