"""Named reads over the models, shared by the CLI and (later) the operator console and public API."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from ntbcare.core.models import AuditEntry, Delivery, Event, Ticket
from ntbcare.core.security import http_url


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def reduced_name(ticket: Ticket) -> str | None:
    """The citizen as an agency needs them: a first name and an initial, never the full profile."""
    parts = ((ticket.citizen.display_name if ticket.citizen else "") or "").split()
    if not parts:
        return None
    return parts[0] + (f" {parts[-1][0]}." if len(parts) > 1 else "")


def list_tickets(session: Session, *, status: str | None = None, limit: int = 100) -> Sequence[Ticket]:
    query = select(Ticket).options(selectinload(Ticket.messages), selectinload(Ticket.citizen))
    if status:
        query = query.where(Ticket.status == status)
    return session.scalars(query.order_by(Ticket.id.desc()).limit(limit)).all()


def ticket_to_dict(ticket: Ticket) -> dict[str, Any]:
    """The public JSON shape of a ticket (``tickets list --json``, ``tickets show --json``)."""
    return {
        "number": ticket.number,
        "status": ticket.status,
        "channel": ticket.channel,
        "text": ticket.text,
        "agency": ticket.agency_code,
        "urgent": ticket.urgent,
        "created_at": _iso(ticket.created_at),
        "opened_at": _iso(ticket.opened_at),
        "updated_at": _iso(ticket.updated_at),
        "citizen": ticket.citizen.display_name if ticket.citizen else None,
        "attachments": ticket.attachments or [],
        "permalink": ticket.permalink,
        "facebook": {
            "origin_id": ticket.origin_id,
            "post_id": ticket.post_id,
            "comment_id": ticket.comment_id,
            "psid": ticket.psid,
            "message_ids": [m.external_id for m in ticket.messages],
        },
    }


def ticket_history(session: Session, ticket: Ticket) -> list[dict[str, Any]]:
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.ticket_id == ticket.id).order_by(AuditEntry.id)
    ).all()
    return [
        {"at": _iso(e.at), "actor": e.actor, "action": e.action, "from": e.from_status, "to": e.to_status,
         "detail": e.detail}
        for e in entries
    ]


def ticket_detail(session: Session, ticket: Ticket) -> dict[str, Any]:
    """The ticket with its messages (also those of tickets merged into it, each saying where it came from)."""
    data = ticket_to_dict(ticket)
    merged = session.scalars(select(Ticket).where(Ticket.merged_into_id == ticket.id).order_by(Ticket.id)).all()
    survivor = session.get(Ticket, ticket.merged_into_id) if ticket.merged_into_id else None
    data["merged_into"] = survivor.number if survivor else None
    data["merged"] = [t.number for t in merged]
    rows = [(m, ticket.number) for m in ticket.messages] + [(m, t.number) for t in merged for m in t.messages]
    data["messages"] = [
        {"external_id": m.external_id, "kind": m.kind, "text": m.text, "occurred_at": _iso(m.occurred_at),
         "removed": m.removed, "hidden": m.hidden, "attachments": m.attachments or [], "ticket": number}
        for m, number in sorted(rows, key=lambda row: row[0].occurred_at)
    ]
    data["history"] = ticket_history(session, ticket)
    return data


def delivery_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
    return dict(rows)


def list_deliveries(session: Session, *, status: str | None = None, limit: int = 50) -> Sequence[Delivery]:
    query = select(Delivery)
    if status:
        query = query.where(Delivery.status == status)
    return session.scalars(query.order_by(Delivery.id.desc()).limit(limit)).all()


def delivery_to_dict(delivery: Delivery, events: Sequence[Event] = ()) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "status": delivery.status,
        "source": delivery.source,
        "received_at": _iso(delivery.received_at),
        "processed_at": _iso(delivery.processed_at),
        "attempts": delivery.attempts,
        "items": delivery.item_count,
        "error": delivery.error,
        "events": [
            {"kind": e.kind, "outcome": e.outcome, "reason": e.reason, "external_id": e.external_id}
            for e in events
        ],
    }


def events_of(session: Session, delivery_id: int) -> Sequence[Event]:
    return session.scalars(select(Event).where(Event.delivery_id == delivery_id).order_by(Event.id)).all()


def location_label(ticket: Ticket) -> str | None:
    detail = (ticket.classification or {}).get("location_detail") or {}
    names = [detail.get(level, {}).get("name") for level in ("desa", "kecamatan", "kabkota")
             if isinstance(detail.get(level), dict)]
    return ", ".join(n for n in names if n) or None


def facebook_url(ticket: Ticket) -> str | None:
    """Where the ticket is on Facebook, for a link: the payload's permalink only when it is http(s)."""
    if ticket.permalink and http_url(ticket.permalink):
        return ticket.permalink
    if ticket.comment_id and ticket.post_id:
        return f"https://www.facebook.com/{ticket.post_id}?comment_id={ticket.comment_id.split('_')[-1]}"
    if ticket.post_id:
        return f"https://www.facebook.com/{ticket.post_id}"
    return None
