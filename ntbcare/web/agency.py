"""The agency ticket page behind the signed single-ticket link from the e-mail (``/a/<token>``).

The link is the credential: every request re-verifies the token (signature, age), and compares the ticket's
``link_version`` (revocation) and agency, inside the write transaction for a POST. A link that cannot open its
ticket (tampered, unknown ticket, another agency, revoked) gets one answer, the same status and the same page,
so the answer tells nobody which tickets exist or whose they are; only a genuine, expired link (the signature
proves it was ours) gets its own page on how to get a new one. Actions are audited as
``agency:<code>``. The page and its actions are shared with the agency inbox (:mod:`ntbcare.web.ticket_actions`);
only the way in differs.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, make_response, render_template, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from ntbcare.core.links import LinkExpired, LinkInvalid, read_agency_token
from ntbcare.core.models import Ticket, utcnow
from ntbcare.web import ticket_actions
from ntbcare.web.context import current_runtime
from ntbcare.web.errors import Wording
from ntbcare.web.ticket_actions import Refusal

log = logging.getLogger(__name__)
bp = Blueprint("agency", __name__, url_prefix="/a")
NOT_VALID = (410, "invalid")  # one answer for every link that cannot open its ticket
ERRORS = Wording(
    csrf="Formulir kedaluwarsa atau tidak sah. Buka kembali tautan dari e-mail, lalu kirim ulang.",
    by_status={405: "Halaman ini hanya dapat dibuka dari tautan e-mail."},
)


class LinkAccess:
    """A ticket reached through its signed link: the token names the ticket, the agency and the link version."""

    inbox_url = None

    def __init__(self, token: str) -> None:
        self.token = token

    def open(self, session: Session, *, lock: bool = False) -> Ticket:
        """The ticket a genuine, current link names; raises Refusal (410: expired, or the one "not valid")."""
        settings = current_runtime().settings
        try:
            claims = read_agency_token(settings.secret_key, self.token, settings.agency_link_max_age_days * 86400,
                                       now=utcnow())
        except LinkExpired:
            raise Refusal(410, "expired") from None
        except LinkInvalid as exc:
            log.info("agency link refused: %s", exc)
            raise Refusal(*NOT_VALID) from None
        query = select(Ticket).where(Ticket.id == claims.ticket_id)
        ticket = session.scalars(query.with_for_update() if lock else query).first()
        if ticket is None or ticket.link_version != claims.link_version or ticket.agency_code != claims.agency_code:
            log.info("agency link refused: ticket %s for %s, link version %s, is not current", claims.ticket_id,
                     claims.agency_code, claims.link_version)
            raise Refusal(*NOT_VALID)
        return ticket

    def actor(self, ticket: Ticket) -> str:
        return f"agency:{ticket.agency_code}"

    def url(self, action: str | None = None, ok: str | None = None) -> str:
        if action is None:
            return url_for("agency.ticket_page", token=self.token, ok=ok)
        return url_for(f"agency.{action.replace('-', '_')}", token=self.token)

    def refused(self, refusal: Refusal) -> Response:
        settings = current_runtime().settings
        html = render_template("agency/refused.html", kind=refusal.kind, operator_emails=settings.operator_emails)
        return make_response(html, refusal.status)


@bp.get("/<token>")
def ticket_page(token: str) -> Response:
    """Read-only: shows the ticket and the forms; changes nothing (mail scanners follow links)."""
    return ticket_actions.show(LinkAccess(token))


@bp.post("/<token>/answer")
def answer(token: str) -> BaseResponse:
    return ticket_actions.answer(LinkAccess(token))


@bp.post("/<token>/not-ours")
def not_ours(token: str) -> Response:
    """The agency declines; the link stops working (the ticket's link version is bumped)."""
    return ticket_actions.not_ours(LinkAccess(token))


@bp.post("/<token>/done")
def done(token: str) -> BaseResponse:
    return ticket_actions.done(LinkAccess(token))
