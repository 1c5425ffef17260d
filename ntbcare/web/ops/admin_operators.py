"""Supervisor page: the console's accounts (``/ops/operators``): add one, disable one, reset a password.

Disabling or resetting ends the account's sessions at once; a supervisor cannot disable their own account
(the console would be left without the person who just acted)."""

from __future__ import annotations

from flask import Response, flash, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from ntbcare.core.models import OperatorRole
from ntbcare.pipeline import operator_accounts as accounts
from ntbcare.pipeline.operator_accounts import AccountError
from ntbcare.web.context import current_runtime
from ntbcare.web.ops.auth import current_operator, supervisor_required
from ntbcare.web.ops.blueprint import bp


def _page(*, form: dict[str, str] | None = None, error: str | None = None, status: int = 200) -> Response:
    with current_runtime().db.session() as session:
        rows = accounts.list_all(session)
    html = render_template("ops/operators.html", rows=rows, form=form or {}, error=error, roles=OperatorRole.ALL)
    return make_response(html, status)


@bp.get("/operators")
@supervisor_required
def operators() -> Response:
    return _page()


@bp.post("/operators")
@supervisor_required
def operator_add() -> BaseResponse:
    form = {"username": (request.form.get("username") or "").strip()[:64],
            "name": (request.form.get("name") or "").strip()[:255],
            "role": request.form.get("role") or OperatorRole.OPERATOR}
    password = request.form.get("password") or ""
    try:
        with current_runtime().db.scope() as session:
            accounts.add(session, form["username"], password, role=form["role"], name=form["name"],
                         actor=current_operator().actor)
    except AccountError as exc:
        return _page(form=form, error=exc.indonesian, status=422)
    flash(f"Akun {accounts.normalize_username(form['username'])} dibuat.", "ok")
    return redirect(url_for("ops.operators"), code=303)


@bp.post("/operators/<username>/disable")
@supervisor_required
def operator_disable(username: str) -> BaseResponse:
    me = current_operator()
    if accounts.normalize_username(username) == me.username:
        return _page(error="Anda tidak dapat menonaktifkan akun Anda sendiri.", status=422)
    try:
        with current_runtime().db.scope() as session:
            accounts.disable(session, username, actor=me.actor)
    except AccountError as exc:
        return _page(error=exc.indonesian, status=404)
    flash(f"Akun {accounts.normalize_username(username)} dinonaktifkan; sesinya diakhiri.", "ok")
    return redirect(url_for("ops.operators"), code=303)


@bp.post("/operators/<username>/password")
@supervisor_required
def operator_password(username: str) -> BaseResponse:
    try:
        with current_runtime().db.scope() as session:
            accounts.set_password(session, username, request.form.get("password") or "",
                                  actor=current_operator().actor)
    except AccountError as exc:
        return _page(error=exc.indonesian, status=422)
    flash(f"Kata sandi {accounts.normalize_username(username)} diganti; sesinya diakhiri.", "ok")
    return redirect(url_for("ops.operators"), code=303)
