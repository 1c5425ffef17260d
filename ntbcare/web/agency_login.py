"""Signing in to the agency inbox without a password: ask for a link (``/agency/login``), open it, press
"Masuk" (``/agency/login/<token>``).

Asking answers the same page, status and time whether or not the address is a contact: the view only counts
the request against the rate limits and hands the address to the background mailer
(:class:`ntbcare.pipeline.agency_access.SignInMailer`). Opening the link only shows a button, because mail
scanners follow links; the CSRF-checked POST of that button uses the link up and starts the session.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Flask, Response, current_app, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from ntbcare.core.display import DISPLAY_TZ, format_duration
from ntbcare.core.models import utcnow
from ntbcare.pipeline.agency_access import LINK_MINUTES, SignInMailer, consume, link_is_usable, normalize_email
from ntbcare.web import agency_session
from ntbcare.web.context import current_runtime
from ntbcare.web.ratelimit import SignInLimits, client_address

bp = Blueprint("agency_login", __name__, url_prefix="/agency")
ERRORS = agency_session.ERRORS
MAILER_KEY, LIMITS_KEY = "ntbcare.sign_in_mailer", "ntbcare.sign_in_limits"
NOTICES = {"expired": "Sesi Anda sudah berakhir. Minta tautan masuk baru untuk melanjutkan.",
           "out": "Anda sudah keluar dari kotak laporan."}


def sign_in_mailer(app: Flask | None = None) -> SignInMailer:
    """The app's background sender of sign-in mail (created on first use, after any fork)."""
    target = app or current_app
    mailer = target.extensions.get(MAILER_KEY)
    if not isinstance(mailer, SignInMailer):
        runtime = current_runtime()
        mailer = target.extensions[MAILER_KEY] = SignInMailer(runtime.db, runtime.settings)
    return mailer


def sign_in_limits() -> SignInLimits:
    limits = current_app.extensions.get(LIMITS_KEY)
    if not isinstance(limits, SignInLimits):
        limits = current_app.extensions[LIMITS_KEY] = SignInLimits(current_runtime().settings.redis_url)
    return limits


def _login_page(*, email: str = "", error: str | None = None, status: int = 200) -> Response:
    notice = NOTICES.get(request.args.get("m", ""))
    html = render_template("agency/login.html", email=email, error=error, notice=notice, minutes=LINK_MINUTES)
    return make_response(html, status)


@bp.get("/login")
def login() -> BaseResponse:
    """The form that asks for a sign-in link; someone already signed in goes straight to the inbox."""
    signed_in, _ = agency_session.current_or_none()
    if signed_in is not None:
        return redirect(url_for("agency_inbox.inbox"), code=303)
    return _login_page()


@bp.post("/login")
def ask_for_link() -> Response:
    """Count the request, hand the address to the background mailer, answer the same page for everyone."""
    raw = (request.form.get("email") or "").strip()
    email = normalize_email(raw)
    verdict = sign_in_limits().hit(client=client_address(request), email=email)
    if not verdict.allowed:
        retry_at = utcnow() + timedelta(seconds=verdict.retry_after)
        wait = format_duration(timedelta(seconds=verdict.retry_after + 59))  # whole minutes, rounded up
        message = (f"Terlalu banyak permintaan tautan masuk. Coba lagi dalam {wait}, "
                   f"setelah pukul {retry_at.astimezone(DISPLAY_TZ):%H.%M} WITA.")
        response = _login_page(email=raw[:254], error=message, status=429)
        response.headers["Retry-After"] = str(verdict.retry_after)
        return response
    if email is None:
        return _login_page(email=raw[:254], error="Tulis alamat e-mail lengkap, misalnya humas@dinas.ntbprov.go.id.",
                           status=422)
    sign_in_mailer().submit(email)
    return make_response(render_template("agency/login_sent.html", email=email, minutes=LINK_MINUTES))


def _link_gone() -> Response:
    return make_response(render_template("agency/link_gone.html", minutes=LINK_MINUTES), 410)


@bp.get("/login/<token>")
def link_page(token: str) -> Response:
    """Read-only: a usable link shows the "Masuk" button; opening it uses nothing up."""
    with current_runtime().db.session() as session:
        usable = link_is_usable(session, token)
    if not usable:
        return _link_gone()
    return make_response(render_template("agency/link.html", action=url_for("agency_login.use_link", token=token)))


@bp.post("/login/<token>")
def use_link(token: str) -> BaseResponse:
    """Use the link up and start a new session; used, expired or unknown links get the same 410 page."""
    with current_runtime().db.scope() as session:
        grant = consume(session, token)
    if grant is None:
        return _link_gone()
    must_choose = agency_session.start(grant)
    return redirect(url_for("agency_inbox.choose" if must_choose else "agency_inbox.inbox"), code=303)
