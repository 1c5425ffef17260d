"""Human-facing pages (the agency ticket page) and the CSRF protection that guards their forms."""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect

# The agency may take a while to write an answer: the form's token stays valid for a working day.
CSRF_TIME_LIMIT_SECONDS = 8 * 3600


def register_web(app: Flask) -> None:
    """Register the agency pages and CSRF protection on every form POST; the webhook (HMAC-signed) is exempt.

    Safe to call twice. ``WTF_CSRF_SSL_STRICT`` is off because the pages send ``Referrer-Policy: no-referrer``,
    so browsers send no Referer for Flask-WTF's HTTPS check to compare; the session-bound token and the
    ``SameSite=Lax`` session cookie remain the protection.
    """
    from ntbcare.web.agency import bp as agency_bp
    from webhooks import bp as webhooks_bp

    if agency_bp.name in app.blueprints:
        return
    public_https = str(app.extensions["ntbcare"].settings.public_base_url).startswith("https://")
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", CSRF_TIME_LIMIT_SECONDS)
    app.config.setdefault("WTF_CSRF_SSL_STRICT", False)
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    if public_https:
        app.config["SESSION_COOKIE_SECURE"] = True
    csrf = app.extensions.get("csrf")
    if not isinstance(csrf, CSRFProtect):
        csrf = CSRFProtect(app)
    csrf.exempt(webhooks_bp)  # by name, so the order of registration does not matter
    app.register_blueprint(agency_bp)
