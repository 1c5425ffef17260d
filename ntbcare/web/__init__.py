"""The human-facing surfaces (the agency ticket page behind its e-mailed link; the agency inbox and its
password-less sign-in; the console; the public figures; kept attachments behind signed links) with what they
share: one layout (``templates/web/_layout.html``), one set of security headers, one error page, CSRF on every
form, and one way to reach the process's runtime (:func:`ntbcare.web.context.current_runtime`).

A surface is a blueprint with a URL prefix plus the wording of its error pages; adding one to ``SURFACES`` gives
it all of the above."""

from __future__ import annotations

from flask import Blueprint, Flask
from flask_wtf.csrf import CSRFProtect

from ntbcare.web import agency, agency_inbox, agency_login, landing, media, open311, ops, transparency
from ntbcare.web.errors import Wording, install_error_pages
from ntbcare.web.security import install_security_headers

# The agency may take a while to write an answer: the form's token stays valid for a working day.
CSRF_TIME_LIMIT_SECONDS = 8 * 3600
SURFACES: tuple[tuple[Blueprint, Wording], ...] = (
    (agency.bp, agency.ERRORS),
    (agency_login.bp, agency_login.ERRORS),
    (agency_inbox.bp, agency_inbox.ERRORS),
    (ops.bp, ops.ERRORS),
    (transparency.bp, transparency.ERRORS),
    (media.bp, media.ERRORS),
)
# Machine endpoints: no CSRF token (an API key authenticates writes), errors in their own format.
APIS: tuple[Blueprint, ...] = (open311.bp,)


def register_web(app: Flask, *, https: bool, csrf_exempt: tuple[Blueprint, ...] = ()) -> None:
    """Register the surfaces, CSRF protection on every form POST (except the blueprints named in
    ``csrf_exempt``, such as the HMAC-signed webhook), the error pages and the shared security headers.
    Safe to call twice.

    ``WTF_CSRF_SSL_STRICT`` is off because the pages send ``Referrer-Policy: no-referrer``, so browsers send
    no Referer for Flask-WTF's HTTPS check to compare; the session-bound token and the ``SameSite=Lax``
    session cookie remain the protection.
    """
    if all(surface.name in app.blueprints for surface, _ in SURFACES):
        return
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", CSRF_TIME_LIMIT_SECONDS)
    app.config.setdefault("WTF_CSRF_SSL_STRICT", False)
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    if https:
        app.config["SESSION_COOKIE_SECURE"] = True
    csrf = app.extensions.get("csrf")
    if not isinstance(csrf, CSRFProtect):
        csrf = CSRFProtect(app)
    for blueprint in (*csrf_exempt, *APIS):
        csrf.exempt(blueprint)  # by blueprint name, so the order of registration does not matter
    for surface, _ in SURFACES:
        app.register_blueprint(surface)
    for api in APIS:
        app.register_blueprint(api)
    app.register_blueprint(landing.bp)  # "/" only: not a surface, whose prefix would claim every error
    install_error_pages(app, {f"{surface.url_prefix}/": wording for surface, wording in SURFACES})
    install_security_headers(app, https=https)
