"""``GET /metrics``: Prometheus text format, for whoever holds ``METRICS_TOKEN``.

Prometheus sends the token as ``Authorization: Bearer <token>`` (``authorization`` in a scrape config); it is
compared in constant time, and an unset METRICS_TOKEN refuses every request, so the page never leaks by
omission. The counters of every process of this service (:mod:`ntbcare.core.metrics`) are added up here,
and what the database knows is read now (:mod:`ntbcare.core.metrics_db`, the watchdog's gauges).
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from ntbcare.core.metrics import multiprocess_dir, process_registry
from ntbcare.core.metrics_db import DatabaseCollector
from ntbcare.pipeline.watchdog import WatchdogCollector
from ntbcare.web.context import current_runtime

bp = Blueprint("metrics", __name__)


def authorized(header: str, token: str) -> bool:
    """``header`` is exactly ``Bearer <token>``; never with an empty token."""
    if not token:
        return False
    return hmac.compare_digest(header.strip().encode(), f"Bearer {token}".encode())


@bp.get("/metrics")
def metrics() -> Response:
    runtime = current_runtime()
    if not authorized(request.headers.get("Authorization", ""), runtime.settings.metrics_token):
        return Response("metrics need Authorization: Bearer <METRICS_TOKEN>\n", status=401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    directory = multiprocess_dir()
    if directory is not None:
        processes = CollectorRegistry()
        MultiProcessCollector(processes, path=directory)
    else:
        processes = process_registry()
    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseCollector(runtime.db))
    database.register(WatchdogCollector(runtime.db, runtime.settings))
    body = generate_latest(processes) + generate_latest(database)
    return Response(body, status=200, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})
