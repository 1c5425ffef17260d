"""The console's review queue (``/ops/review``), ticket search (``/ops/tickets``) and ticket page
(``/ops/tickets/<number>``). GET only reads; the actions post to :mod:`ntbcare.web.ops.ticket_actions`."""

from __future__ import annotations

from flask import Response, abort, make_response, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from ntbcare.core.lifecycle import find_ticket
from ntbcare.core.models import Agency, Channel, Citizen, Ticket, TicketStatus, utcnow
from ntbcare.core.queries import location_label
from ntbcare.pipeline import console_duplicates, console_tickets
from ntbcare.pipeline.media_view import MediaLink, page_media
from ntbcare.pipeline.ticket_claim import version_of
from ntbcare.pipeline.ticket_timeline import photos, timeline
from ntbcare.web.context import current_runtime
from ntbcare.web.ops.auth import operator_required
from ntbcare.web.ops.blueprint import bp
from ntbcare.web.presentation import STATUS_LABELS, deadline, status_label

CHANNEL_LABELS = {Channel.COMMENT: "Komentar", Channel.POST: "Kiriman", Channel.MESSENGER: "Messenger",
                  Channel.MENTION: "Sebutan", Channel.OPEN311: "Open311"}


def _agencies(session: Session) -> list[Agency]:
    return list(session.scalars(select(Agency).where(Agency.active.is_(True)).order_by(Agency.name)))


def _helpers(media: dict[int, dict[str, MediaLink]] | None = None) -> dict[str, object]:
    """What the templates call; ``photos(ticket)`` links the ticket's kept attachments through signed links."""
    shown = media or {}
    return {"status_label": status_label, "channel_label": lambda c: CHANNEL_LABELS.get(c, c),
            "version_of": version_of, "reason_label": console_tickets.reason_label,
            "photos": lambda ticket: photos(ticket.attachments, shown.get(ticket.id)),
            "location_label": location_label}


@bp.get("/review")
@operator_required
def review() -> Response:
    now = utcnow()
    try:
        page = max(1, int(request.args.get("page") or 1))
    except ValueError:
        page = 1
    with current_runtime().db.session() as session:
        queue = console_tickets.review_queue(session, page)
        agencies = _agencies(session)
        names = {a.code: a.name for a in agencies}
        items = [{"ticket": t, "candidates": console_tickets.candidates(t), "deadline": deadline(t, now),
                  "citizen": queue.names.get(t.citizen_id or 0, "")} for t in queue.tickets]
        duplicates = console_duplicates.suggested_duplicates(session, queue.tickets, now)
        media = page_media(session, current_runtime().settings, queue.tickets)
        html = render_template("ops/review.html", items=items, queue=queue, agencies=agencies, names=names,
                               duplicates=duplicates, total=console_tickets.review_count(session),
                               **_helpers(media))
    return make_response(html)


@bp.get("/tickets")
@operator_required
def tickets() -> Response:
    now = utcnow()
    filters = console_tickets.parse_filters(request.args)
    with current_runtime().db.session() as session:
        result = console_tickets.search(session, filters, now)
        agencies = _agencies(session)
        html = render_template("ops/tickets.html", result=result, filters=filters, agencies=agencies, now=now,
                               statuses=[(s, STATUS_LABELS.get(s, "Digabung")) for s in TicketStatus.ALL],
                               channels=CHANNEL_LABELS, **_helpers())
    return make_response(html)


@bp.get("/tickets/<number>")
@operator_required
def ticket_page(number: str) -> Response:
    with current_runtime().db.session() as session:
        ticket = find_ticket(session, number[:40]) if not number.isdigit() else None
        if ticket is None:
            abort(404)
        citizen = session.get(Citizen, ticket.citizen_id) if ticket.citizen_id else None
        survivor = session.get(Ticket, ticket.merged_into_id) if ticket.merged_into_id else None
        agency = session.get(Agency, ticket.agency_code) if ticket.agency_code else None
        media = page_media(session, current_runtime().settings, [ticket])
        html = render_template("ops/ticket.html", ticket=ticket, citizen=citizen, survivor=survivor,
                               agency=agency, items=timeline(session, ticket, media[ticket.id]),
                               agencies=_agencies(session), candidates=console_tickets.candidates(ticket),
                               deadline=deadline(ticket, utcnow()), **_helpers(media))
    return make_response(html)
