"""Supervisor pages: the agencies' contact addresses (``/ops/contacts``) and one agency's form
(``/ops/contacts/<code>``), the browser's counterpart of ``ntbcare agencies export|import``."""

from __future__ import annotations

from flask import Response, abort, flash, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from ntbcare.core.models import Agency
from ntbcare.pipeline import console_admin
from ntbcare.pipeline.console_admin import AdminError, Conflict
from ntbcare.web.context import current_runtime
from ntbcare.web.ops.auth import current_operator, supervisor_required
from ntbcare.web.ops.blueprint import bp


@bp.get("/contacts")
@supervisor_required
def contacts() -> Response:
    with current_runtime().db.session() as session:
        rows = [(agency, console_admin.head_emails(agency)) for agency in console_admin.active_agencies(session)]
    return make_response(render_template("ops/contacts.html", rows=rows))


def _form(agency: Agency, *, emails: str | None = None, heads: str | None = None, error: str | None = None,
          status: int = 200) -> Response:
    html = render_template("ops/contact.html", agency=agency, version=console_admin.version_of(agency),
                           emails="\n".join(agency.emails) if emails is None else emails,
                           heads="\n".join(console_admin.head_emails(agency)) if heads is None else heads,
                           error=error)
    return make_response(html, status)


@bp.get("/contacts/<code>")
@supervisor_required
def contact(code: str) -> Response:
    with current_runtime().db.session() as session:
        agency = session.get(Agency, code)
        if agency is None:
            abort(404)
        return _form(agency)


@bp.post("/contacts/<code>")
@supervisor_required
def contact_save(code: str) -> BaseResponse:
    emails, heads = request.form.get("emails") or "", request.form.get("head_emails") or ""
    try:
        with current_runtime().db.scope() as session:
            agency = console_admin.set_contacts(session, code, emails=emails, heads=heads,
                                                version=request.form.get("version") or "",
                                                actor=current_operator().actor)
            name = agency.name
    except AdminError as exc:
        with current_runtime().db.session() as session:
            current = session.get(Agency, code)
            if current is None:
                abort(404)
            keep = not isinstance(exc, Conflict)  # after a conflict, show what is stored now
            return _form(current, emails=emails if keep else None, heads=heads if keep else None, error=str(exc),
                         status=409 if isinstance(exc, Conflict) else 422)
    flash(f"Kontak {name} disimpan.", "ok")
    return redirect(url_for("ops.contacts"), code=303)
