"""What the public may see of a ticket: its number, agency, dates, status and the scrubbed texts; nothing else.

Texts pass through the same scrubber as the bot's public replies (NIK, phone numbers, e-mail addresses), then
lose links (a profile or the citizen's own post), @mentions and the words of the citizen's Facebook name.
Names, Facebook ids, permalinks, photos and the citizen's e-mail never leave: the view is built field by
field, so a new column on a ticket is not published by accident. Shared locations are rounded to about 100 m,
enough for the street, not the house.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.privacy import scrub
from ntbcare.core.models import Agency, AgencyAnswer, Ticket, TicketStatus
from ntbcare.core.queries import location_label
from routing.deadlines import DeadlinePolicy, deadline_for

LINK = re.compile(r"(?i)\b(?:https?://|www\.|(?:m\.)?facebook\.com/|fb\.com/|fb\.me/|wa\.me/)\S*")
MENTION = re.compile(r"@[\w.]+")
LINK_MASK = "[tautan disamarkan]"
NAME_MASK = "[nama disamarkan]"
_REPEATED_NAME = re.compile(rf"{re.escape(NAME_MASK)}(?:[ .]*{re.escape(NAME_MASK)})+")
COORDINATE_DIGITS = 3
CLOSED = (TicketStatus.ANSWERED, TicketStatus.CLOSED)


def public_text(text: str | None, names: tuple[str, ...] = ()) -> str:
    """``text`` fit to publish: personal numbers and addresses masked, links, mentions and ``names`` removed."""
    cleaned = LINK.sub(LINK_MASK, scrub(text or ""))
    cleaned = MENTION.sub(NAME_MASK, cleaned)
    for name in names:
        for word in {w for w in re.split(r"\W+", name) if len(w) >= 3}:
            cleaned = re.sub(rf"(?i)\b{re.escape(word)}\b", NAME_MASK, cleaned)
    return _REPEATED_NAME.sub(NAME_MASK, cleaned).strip()


@dataclass(frozen=True)
class PublicTicket:
    """A ticket as published (the Open311 request fields, named after them)."""

    service_request_id: str
    status: str  # open or closed
    status_notes: str | None
    service_code: str | None
    service_name: str | None
    description: str
    requested_datetime: datetime
    updated_datetime: datetime
    expected_datetime: datetime | None
    address: str | None
    lat: float | None
    long: float | None
    # Every public answer, oldest first (when, scrubbed text): the agency page shows them all; Open311 only the
    # latest, as status_notes.
    answers: tuple[tuple[datetime, str], ...] = ()


def _location(ticket: Ticket) -> tuple[float | None, float | None]:
    for item in ticket.attachments or []:
        if isinstance(item, dict) and item.get("type") == "location":
            try:
                lat, lon = float(item["lat"]), float(item["long"])
            except (KeyError, TypeError, ValueError):
                continue
            return round(lat, COORDINATE_DIGITS), round(lon, COORDINATE_DIGITS)
    return None, None


def public_answers(session: Session, ticket_ids: list[int]) -> dict[int, list[AgencyAnswer]]:
    """Each ticket's public agency answers (answers, and the notes of a "done"), oldest first."""
    found: dict[int, list[AgencyAnswer]] = {}
    if not ticket_ids:
        return found
    for answer in session.scalars(select(AgencyAnswer).where(
            AgencyAnswer.ticket_id.in_(ticket_ids), AgencyAnswer.action.in_(("answer", "done")),
            AgencyAnswer.text != "").order_by(AgencyAnswer.id)):
        found.setdefault(answer.ticket_id, []).append(answer)
    return found


def public_view(ticket: Ticket, agency: Agency | None, answers: list[AgencyAnswer],
                policy: DeadlinePolicy | None = None) -> PublicTicket:
    """The published form of ``ticket`` with its public ``answers`` (oldest first; the caller has checked it may
    be published at all)."""
    names = tuple(n for n in [ticket.citizen.display_name if ticket.citizen else None] if n)
    lat, lon = _location(ticket)
    expected = ticket.deadline_at
    if expected is None and policy is not None and ticket.tier in policy.tiers:
        expected = deadline_for(ticket.tier, ticket.opened_at, policy)
    return PublicTicket(
        service_request_id=ticket.number,
        status="closed" if ticket.status in CLOSED else "open",
        status_notes=public_text(answers[-1].text, names) if answers else None,
        service_code=ticket.agency_code,
        service_name=agency.name if agency is not None else None,
        description=public_text(ticket.text, names),
        requested_datetime=ticket.opened_at,
        updated_datetime=ticket.updated_at,
        expected_datetime=expected,
        address=location_label(ticket),
        lat=lat,
        long=lon,
        answers=tuple((a.created_at, public_text(a.text, names)) for a in answers),
    )
