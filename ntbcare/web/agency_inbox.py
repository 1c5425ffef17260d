"""The agency inbox (``/agency/``): an agency's tickets in tabs, and each ticket with the same page and
actions as the e-mailed link, reached without that link.

Every page here needs a live session (else: to ``/agency/login``), an agency chosen (else: to
``/agency/choose``), and the address still a contact of that active agency (checked on every request, so
removing a contact from the registry ends its access). A ticket is found by number *and* agency, inside the
write transaction for an action: another agency's ticket is a 404 whatever the URL says. Actions are audited as
``agency:<CODE>:<email>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, Response, g, make_response, redirect, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from ntbcare.core.models import Ticket, utcnow
from ntbcare.pipeline.agency_access import TABS, agency_ticket, inbox_actor, signed_in_agency, tab_counts
from ntbcare.pipeline.agency_access import inbox as inbox_query
from ntbcare.web import agency_session, ticket_actions
from ntbcare.web.agency_session import AgencySession
from ntbcare.web.context import current_runtime
from ntbcare.web.errors import error_page
from ntbcare.web.presentation import inbox_row
from ntbcare.web.ticket_actions import Refusal

bp = Blueprint("agency_inbox", __name__, url_prefix="/agency")
ERRORS = agency_session.ERRORS
TAB_LABELS = {"open": "Terbuka", "answered": "Dijawab", "closed": "Selesai", "returned": "Dikembalikan"}
NO_AGENCY_NEEDED = {"agency_inbox.choose", "agency_inbox.choose_agency", "agency_inbox.logout"}
NOT_FOUND = "Laporan tidak ditemukan di kotak laporan instansi Anda."


@dataclass(frozen=True)
class Signed:
    """Who is signed in and the agency they act for now."""

    session: AgencySession
    code: str
    name: str


@bp.before_request
def _require_session() -> BaseResponse | None:
    signed_in, expired = agency_session.current_or_none()
    if signed_in is None:
        return redirect(url_for("agency_login.login", m="expired" if expired else None), code=303)
    g.agency_session = signed_in
    if request.endpoint in NO_AGENCY_NEEDED:
        return None
    if signed_in.code is None:
        return redirect(url_for("agency_inbox.choose"), code=303)
    with current_runtime().db.session() as session:
        agency = signed_in_agency(session, signed_in.code, signed_in.email)
        name = agency.name if agency is not None else ""
    if agency is None:  # no longer a contact, or the agency was switched off
        agency_session.end()
        return redirect(url_for("agency_login.login", m="expired"), code=303)
    g.signed = Signed(signed_in, signed_in.code, name)
    return None


def _signed() -> Signed:
    signed = g.signed
    assert isinstance(signed, Signed)
    return signed


@bp.get("/")
def inbox() -> Response:
    """The agency's tickets in one tab, searched by number or words, a page at a time."""
    signed = _signed()
    tab = request.args.get("tab", "open")
    tab = tab if tab in TABS else "open"
    q = " ".join((request.args.get("q") or "").split())[:100]
    page = request.args.get("page", "1")
    now = utcnow()
    with current_runtime().db.session() as session:
        found = inbox_query(session, signed.code, tab=tab, q=q, page=int(page) if page.isdigit() else 1, now=now)
        counts = tab_counts(session, signed.code)
        rows = [inbox_row(t, signed.code, now, found.returned_at.get(t.id)) for t in found.tickets]
    html = render_template("agency/inbox.html", signed=signed, tab=tab, tabs=TAB_LABELS, counts=counts, q=q,
                           rows=rows, found=found, several=len(signed.session.agencies) > 1)
    return make_response(html)


@bp.get("/choose")
def choose() -> Response:
    """An address that is a contact of several agencies picks the one it acts for."""
    signed_in: AgencySession = g.agency_session
    return make_response(render_template("agency/choose.html", signed_in=signed_in))


@bp.post("/choose")
def choose_agency() -> BaseResponse:
    if not agency_session.choose(request.form.get("code", "")):
        return error_page(404, "Instansi tersebut tidak terkait dengan alamat e-mail Anda.")
    return redirect(url_for("agency_inbox.inbox"), code=303)


@bp.post("/logout")
def logout() -> BaseResponse:
    agency_session.end()
    return redirect(url_for("agency_login.login", m="out"), code=303)


class InboxAccess:
    """A ticket reached from the inbox: found by number among the signed-in agency's tickets."""

    def __init__(self, number: str) -> None:
        self.number, self.signed = number, _signed()

    def open(self, session: Session, *, lock: bool = False) -> Ticket:
        ticket = agency_ticket(session, self.signed.code, self.number, lock=lock)
        if ticket is None:
            raise Refusal(404, "invalid")
        return ticket

    def actor(self, ticket: Ticket) -> str:
        return inbox_actor(self.signed.code, self.signed.session.email)

    def url(self, action: str | None = None, ok: str | None = None) -> str:
        if action is None:
            return url_for("agency_inbox.ticket_page", number=self.number, ok=ok)
        return url_for(f"agency_inbox.{action.replace('-', '_')}", number=self.number)

    def refused(self, refusal: Refusal) -> Response:
        return error_page(refusal.status, NOT_FOUND)

    @property
    def inbox_url(self) -> str:
        return url_for("agency_inbox.inbox")


@bp.get("/tickets/<number>")
def ticket_page(number: str) -> Response:
    return ticket_actions.show(InboxAccess(number))


@bp.post("/tickets/<number>/answer")
def answer(number: str) -> BaseResponse:
    return ticket_actions.answer(InboxAccess(number))


@bp.post("/tickets/<number>/not-ours")
def not_ours(number: str) -> Response:
    return ticket_actions.not_ours(InboxAccess(number))


@bp.post("/tickets/<number>/done")
def done(number: str) -> BaseResponse:
    return ticket_actions.done(InboxAccess(number))
