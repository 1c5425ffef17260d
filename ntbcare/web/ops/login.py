"""Signing in to the console (``/ops/login``) and out (a POST to ``/ops/logout``).

A successful login starts a new server-side session with a new token and a new CSRF token, whatever the
browser held before. Failed logins are throttled per username and per address (:mod:`.throttle`); a refused
attempt is answered 429 with the time to try again, and is not checked against the password at all.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Response, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from ntbcare.core.display import DISPLAY_TZ, format_duration
from ntbcare.core.models import utcnow
from ntbcare.pipeline import operator_accounts as accounts
from ntbcare.web.context import current_runtime
from ntbcare.web.ops.auth import current_operator, forget_cookie, rotate_csrf, session_token, set_cookie
from ntbcare.web.ops.blueprint import bp
from ntbcare.web.ops.throttle import login_throttle
from ntbcare.web.ratelimit import client_address

NOTICES = {"expired": "Sesi Anda sudah berakhir. Silakan masuk lagi.", "out": "Anda sudah keluar dari konsol."}
WRONG = "Nama pengguna atau kata sandi salah."


def _page(*, username: str = "", error: str | None = None, status: int = 200) -> Response:
    notice = NOTICES.get(request.args.get("m", ""))
    return make_response(render_template("ops/login.html", username=username, error=error, notice=notice), status)


@bp.get("/login")
def login() -> BaseResponse:
    """The login form; someone signed in already goes straight to the dashboard."""
    runtime = current_runtime()
    with runtime.db.session() as session:
        state = accounts.resolve(session, session_token(), idle_minutes=runtime.settings.ops_idle_minutes)
    if state.operator is not None:
        return redirect(url_for("ops.dashboard"), code=303)
    return _page()


@bp.post("/login")
def login_submit() -> BaseResponse:
    """Check the throttle, then the password; a success rotates the session and goes to the dashboard."""
    raw = (request.form.get("username") or "").strip()[:64]
    username = accounts.normalize_username(raw)
    password = request.form.get("password") or ""
    address = client_address(request)
    throttle = login_throttle()
    wait = throttle.retry_after(username, address)
    if wait:
        retry_at = utcnow() + timedelta(seconds=wait)
        duration = format_duration(timedelta(seconds=wait + 59))  # whole minutes, rounded up
        message = (f"Terlalu banyak percobaan masuk yang gagal. Coba lagi dalam {duration}, "
                   f"setelah pukul {retry_at.astimezone(DISPLAY_TZ):%H.%M} WITA.")
        refused = _page(username=raw, error=message, status=429)
        refused.headers["Retry-After"] = str(wait)
        return refused
    runtime = current_runtime()
    with runtime.db.scope() as session:
        operator = accounts.authenticate(session, username, password) if username and password else None
        if operator is None:
            accounts.audit(session, "system", "login_failed", username=username, address=address)
        else:
            old = session_token()
            if old:
                accounts.end_session(session, old)
            token = accounts.start_session(session, operator)
            accounts.audit(session, f"operator:{operator.username}", "login", address=address)
    if operator is None:
        throttle.failed(username, address)
        return _page(username=raw, error=WRONG, status=401)
    rotate_csrf()
    response = redirect(url_for("ops.dashboard"), code=303)
    set_cookie(response, token)
    return response


@bp.post("/logout")
def logout() -> BaseResponse:
    """End this session at once (the row, not just the cookie)."""
    operator = current_operator()
    with current_runtime().db.scope() as session:
        accounts.end_session(session, session_token())
        accounts.audit(session, operator.actor, "logout")
    rotate_csrf()
    response = redirect(url_for("ops.login", m="out"), code=303)
    forget_cookie(response)
    return response
