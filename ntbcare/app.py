"""The Flask application factory: the webhook, health endpoints and the human-facing surfaces."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from ntbcare.core.settings import Settings
from ntbcare.pipeline.runtime import Runtime
from ntbcare.web import register_web
from webhooks import bp as webhooks_bp

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> Flask:
    """Build the app; without a runtime, one is built in "web" mode from the settings."""
    if runtime is None:
        runtime = Runtime.build(settings or Settings.from_env(), mode="web")
    settings = runtime.settings
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.webhook_max_body_bytes,
        MAX_FORM_MEMORY_SIZE=512 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.extensions["ntbcare"] = runtime

    app.register_blueprint(webhooks_bp)
    register_web(app, https=settings.public_base_url.startswith("https://"), csrf_exempt=(webhooks_bp,))

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz() -> ResponseReturnValue:
        checks = {"database": _database_ok(runtime), "queue": runtime.dispatcher.healthy()}
        if runtime.sweeper is not None:
            checks["sweeper"] = runtime.sweeper.is_alive()
        ready = all(checks.values())
        return jsonify(status="ok" if ready else "unavailable", checks=checks), 200 if ready else 503

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        return jsonify(error=exc.name, description=exc.description), exc.code or 500

    return app


def _database_ok(runtime: Runtime) -> bool:
    # A raw driver connection: no transaction, so the probe never takes (or waits for) SQLite's write lock.
    try:
        connection = runtime.db.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT 1")
            cursor.fetchall()
        finally:
            connection.close()
        return True
    except Exception as exc:
        log.warning("readiness: database unreachable: %s", exc)
        return False
