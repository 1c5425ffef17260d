"""Supervisor page: the bot's wording (``/ops/templates``), with the placeholder check of
``ntbcare templates set``; a template can be saved or put back to its default."""

from __future__ import annotations

from flask import Response, flash, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from ntbcare.pipeline import console_admin
from ntbcare.pipeline.console_admin import AdminError
from ntbcare.web.context import current_runtime
from ntbcare.web.ops.auth import current_operator, supervisor_required
from ntbcare.web.ops.blueprint import bp


def _page(*, errors: dict[str, str] | None = None, texts: dict[str, str] | None = None,
          status: int = 200) -> Response:
    with current_runtime().db.session() as session:
        rows = console_admin.templates(session)
    html = render_template("ops/templates.html", rows=rows, errors=errors or {}, texts=texts or {})
    return make_response(html, status)


@bp.get("/templates")
@supervisor_required
def templates() -> Response:
    return _page()


@bp.post("/templates/<key>")
@supervisor_required
def template_save(key: str) -> BaseResponse:
    text = (request.form.get("text") or "").replace("\r\n", "\n")
    try:
        with current_runtime().db.scope() as session:
            console_admin.set_template(session, key, text, actor=current_operator().actor)
    except AdminError as exc:
        return _page(errors={key: str(exc)}, texts={key: text}, status=422)
    flash(f"Templat {key} disimpan.", "ok")
    return redirect(url_for("ops.templates"), code=303)


@bp.post("/templates/<key>/reset")
@supervisor_required
def template_reset(key: str) -> BaseResponse:
    try:
        with current_runtime().db.scope() as session:
            console_admin.reset_template(session, key, actor=current_operator().actor)
    except AdminError as exc:
        return _page(errors={key: str(exc)}, status=404)
    flash(f"Templat {key} kembali ke teks bawaan.", "ok")
    return redirect(url_for("ops.templates"), code=303)
