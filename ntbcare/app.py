"""The Flask application factory: the webhook, health endpoints and the human-facing surfaces.

Every HTTP error is answered by :mod:`ntbcare.web.errors` (a page on the surfaces, JSON here), and every
response carries the headers of :mod:`ntbcare.web.security`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Flask, Request, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import ImmutableMultiDict, MultiDict

from ntbcare.core.models import utcnow
from ntbcare.core.security import install_log_redaction, strip_controls
from ntbcare.core.settings import Settings
from ntbcare.pipeline.accountability.cache import Warmer
from ntbcare.pipeline.runtime import Runtime
from ntbcare.pipeline.watchdog import webhook_silence
from ntbcare.web import register_web
from ntbcare.web.context import install_runtime
from ntbcare.web.metrics import bp as metrics_bp
from webhooks import bp as webhooks_bp

log = logging.getLogger(__name__)


class ControlFreeMultiDict(ImmutableMultiDict[str, Any]):
    """Form and query fields without control characters (newline and tab kept): an agency's answer is shown
    to operators, stored in the audit and sent to Facebook, where such characters only hide or reorder text."""

    def __init__(self, mapping: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None) -> None:
        if mapping is None:
            super().__init__()
            return
        if isinstance(mapping, MultiDict):
            pairs: Iterable[tuple[str, Any]] = mapping.items(multi=True)
        elif isinstance(mapping, Mapping):
            pairs = mapping.items()
        else:
            pairs = mapping
        super().__init__([(key, strip_controls(value) if isinstance(value, str) else value) for key, value in pairs])


class ControlFreeRequest(Request):
    """The app's request: every form or query field it parses passes through :class:`ControlFreeMultiDict`."""

    parameter_storage_class = ControlFreeMultiDict


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None,
               warm_figures: bool | None = None) -> Flask:
    """Build the app; without a runtime, one is built in "web" mode from the settings.

    A served app (one that built its runtime, or ``warm_figures=True``) keeps this month's public figures warm
    from a background thread, so the default /transparansi never waits on the aggregation; an app handed a
    runtime (tests) computes only when asked, so nothing races the data a test is writing.
    """
    built = runtime is None
    if runtime is None:
        runtime = Runtime.build(settings or Settings.from_env(), mode="web")
    settings = runtime.settings
    install_log_redaction()  # no log line, Flask's "Exception on /a/<token>/answer" included, holds a link
    app = Flask(__name__)
    app.request_class = ControlFreeRequest
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.webhook_max_body_bytes,
        MAX_FORM_MEMORY_SIZE=512 * 1024,
        JSON_SORT_KEYS=False,
    )
    install_runtime(app, runtime)

    app.register_blueprint(webhooks_bp)
    app.register_blueprint(metrics_bp)
    register_web(app, https=settings.public_base_url.startswith("https://"), csrf_exempt=(webhooks_bp,))

    if warm_figures if warm_figures is not None else built:
        app.extensions["figures-warmer"] = Warmer(runtime.db, runtime.pipeline.deadline_policy).start()

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz() -> ResponseReturnValue:
        """Ready when the database answers and the queue works: Redis, or the embedded worker threads and the
        sweeper of this process. A 503 names the failing checks, so an alert says what to restart."""
        checks = {"database": _database_ok(runtime), "queue": runtime.dispatcher.healthy()}
        if runtime.sweeper is not None:
            checks["sweeper"] = runtime.sweeper.is_alive()
        failing = [name for name, ok in checks.items() if not ok]
        if failing:
            return jsonify(status="unavailable", checks=checks, failing=failing), 503
        silence = _webhook_silence(runtime)
        if silence is not None:  # still ready (a restart would not help): Facebook may have unsubscribed us
            return jsonify(status="degraded", checks=checks, failing=[], degraded=["webhook_silence"],
                           webhook_silence=silence), 200
        return jsonify(status="ok", checks=checks, failing=[]), 200

    return app


def _webhook_silence(runtime: Runtime) -> dict[str, object] | None:
    """The watchdog's view when the webhook has been silent too long (see ntbcare.pipeline.watchdog)."""
    try:
        with runtime.db.session() as session:
            silence = webhook_silence(session, utcnow(), runtime.settings)
    except Exception as exc:
        log.warning("readiness: webhook watchdog failed: %s", exc)
        return None
    return silence.as_dict() if silence.silent else None


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
