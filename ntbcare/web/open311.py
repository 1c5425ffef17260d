"""Open311 GeoReport v2 at ``/open311/v2``: discovery, services, service requests (read, anonymised) and
``POST requests`` for clients holding an API key (``ntbcare apikeys add NAME``), each as ``.json`` or ``.xml``.

Errors are the spec's error array (``[{"code": 400, "description": …}]`` or ``<errors><error>…``) with the same
HTTP status. Reads are cached for a minute per query; writes are limited per key (``WRITES_PER_KEY``).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from typing import Any

from flask import Blueprint, Response, current_app, request
from flask.typing import ResponseReturnValue
from limits import parse
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import select

from ntbcare.core.models import Agency, Ticket, TicketStatus, utcnow
from ntbcare.pipeline.accountability.apikeys import find_active
from ntbcare.pipeline.accountability.intake import open_ticket
from ntbcare.pipeline.accountability.listing import published, views
from ntbcare.pipeline.accountability.open311 import (
    JURISDICTION,
    MAX_REQUESTS,
    Open311Error,
    errors_document,
    iso,
    parse_query,
    request_document,
    to_xml,
)
from ntbcare.web.context import current_runtime
from ntbcare.web.open311_fields import raw_form, validate_post

log = logging.getLogger(__name__)
bp = Blueprint("open311", __name__, url_prefix="/open311/v2")
FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
WRITES_PER_KEY = parse("30/minute")
READ_CACHE_SECONDS = 60.0
NOTICE = "Laporan diterima NTB Care dan diteruskan ke instansi yang berwenang."
_read_cache: dict[str, tuple[float, str]] = {}
_read_lock = threading.Lock()


def _respond(fmt: str, document: Any, root: str, item: str | None = None, status: int = 200) -> Response:
    body = to_xml(root, item, document) if fmt == "xml" else json.dumps(document, ensure_ascii=False)
    return Response(body, status, content_type=FORMATS.get(fmt, FORMATS["json"]))


def _error(fmt: str, error: Open311Error) -> Response:
    response = _respond(fmt, errors_document(error), "errors", "error", status=error.code)
    if error.code == 429:
        response.headers["Retry-After"] = str(getattr(error, "retry_after", 60))
    return response


def _format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise Open311Error(404, "format must be json or xml")
    return fmt


def _jurisdiction(values: Any) -> None:
    given = (values.get("jurisdiction_id") or "").strip()
    if given and given != JURISDICTION:
        raise Open311Error(404, f"jurisdiction_id not found: this server serves {JURISDICTION}")


def _guarded(view: Any) -> Any:
    def wrapper(fmt: str, **kwargs: Any) -> ResponseReturnValue:
        try:
            return view(_format(fmt), **kwargs)
        except Open311Error as error:
            return _error(fmt if fmt in FORMATS else "json", error)
    wrapper.__name__ = view.__name__
    return wrapper


def _cached(key: str, build: Any) -> str:
    with _read_lock:
        hit = _read_cache.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    body = build()
    with _read_lock:
        if len(_read_cache) > 512:
            _read_cache.clear()
        _read_cache[key] = (time.monotonic() + READ_CACHE_SECONDS, body)
    return body


def clear_read_cache() -> None:
    with _read_lock:
        _read_cache.clear()


@bp.get("/discovery.<fmt>")
@_guarded
def discovery(fmt: str) -> ResponseReturnValue:
    base = current_runtime().settings.public_base_url.rstrip("/")
    document = {
        "changeset": "2026-12-04T00:00:00+08:00",
        "contact": "Diskominfotik Provinsi NTB, operator NTB Care",
        "key_service": "API key untuk menulis: minta kepada operator NTB Care",
        "endpoints": [{"specification": "http://wiki.open311.org/GeoReport_v2", "url": f"{base}/open311/v2",
                       "changeset": "2026-12-04T00:00:00+08:00", "type": "production",
                       "formats": ["application/json", "text/xml"]}],
    }
    return _respond(fmt, document, "discovery")


@bp.get("/services.<fmt>")
@_guarded
def services(fmt: str) -> ResponseReturnValue:
    _jurisdiction(request.args)
    with current_runtime().db.read_session() as session:
        rows = [{"service_code": a.code, "service_name": a.name,
                 "description": f"Pengaduan yang menjadi kewenangan {a.name}", "metadata": False,
                 "type": "realtime", "keywords": ", ".join((a.data or {}).get("keywords") or [])[:500],
                 "group": a.kind}
                for a in session.scalars(select(Agency).where(Agency.active.is_(True)).order_by(Agency.code))]
    return _respond(fmt, rows, "services", "service")


def _requests_body(fmt: str) -> str:
    runtime = current_runtime()
    query = parse_query(request.args, utcnow())
    statement = published()
    if query.ids:
        statement = statement.where(Ticket.number.in_(query.ids))
    else:
        assert query.start is not None and query.end is not None
        statement = statement.where(Ticket.opened_at >= query.start, Ticket.opened_at <= query.end)
        if query.service_codes:
            statement = statement.where(Ticket.agency_code.in_(query.service_codes))
        if query.statuses and len(query.statuses) == 1:
            closed = (TicketStatus.ANSWERED, TicketStatus.CLOSED)
            statement = statement.where(Ticket.status.in_(closed) if query.statuses[0] == "closed"
                                        else Ticket.status.not_in(closed))
    statement = statement.order_by(Ticket.opened_at.desc(), Ticket.id.desc()).limit(MAX_REQUESTS)
    with runtime.db.read_session() as session:
        documents = [request_document(v) for v in
                     views(session, list(session.scalars(statement)), runtime.pipeline.deadline_policy)]
    return to_xml("service_requests", "request", documents) if fmt == "xml" else json.dumps(documents,
                                                                                         ensure_ascii=False)


@bp.get("/requests.<fmt>")
@_guarded
def requests_list(fmt: str) -> ResponseReturnValue:
    _jurisdiction(request.args)
    key = f"{current_runtime().db.engine.url}|{fmt}|{sorted(request.args.items(multi=True))}"
    return Response(_cached(key, lambda: _requests_body(fmt)), content_type=FORMATS[fmt])


@bp.get("/requests/<request_id>.<fmt>")
@_guarded
def request_one(fmt: str, request_id: str) -> ResponseReturnValue:
    _jurisdiction(request.args)
    runtime = current_runtime()
    with runtime.db.read_session() as session:
        ticket = session.scalars(published().where(Ticket.number == request_id.upper())).first()
        if ticket is None:
            raise Open311Error(404, f"service_request_id {request_id!r} not found")
        document = request_document(views(session, [ticket], runtime.pipeline.deadline_policy)[0])
    return _respond(fmt, [document], "service_requests", "request")


class WriteLimits:
    """Writes per API key in a moving window, in Redis when configured (shared by every web process)."""

    def __init__(self, redis_url: str) -> None:
        storage: Storage = RedisStorage(redis_url, key_prefix="ntbcare-open311") if redis_url else MemoryStorage()
        self._limiter = MovingWindowRateLimiter(storage)
        self._fallback = MovingWindowRateLimiter(MemoryStorage())

    def retry_after(self, key_name: str) -> int:
        """0 when this write may go ahead, else the seconds until one may."""
        for limiter in (self._limiter, self._fallback):
            try:
                if limiter.hit(WRITES_PER_KEY, key_name):
                    return 0
                reset = limiter.get_window_stats(WRITES_PER_KEY, key_name).reset_time
                return max(1, math.ceil(reset - time.time()))
            except Exception as exc:  # Redis unreachable: keep limiting in this process
                log.warning("open311 write limits: storage unavailable, counting in memory: %s", exc)
        return 0


def _limits() -> WriteLimits:
    limits = current_app.extensions.get("open311-limits")
    if not isinstance(limits, WriteLimits):
        limits = WriteLimits(current_runtime().settings.redis_url)
        current_app.extensions["open311-limits"] = limits
    return limits


@bp.post("/requests.<fmt>")
@_guarded
def requests_create(fmt: str) -> ResponseReturnValue:
    form = raw_form()  # as sent: a control character is refused below, not quietly dropped
    _jurisdiction(request.form)
    runtime = current_runtime()
    with runtime.db.scope() as session:
        key = find_active(session, (form.get("api_key") or "").strip())
        if key is None:
            raise Open311Error(403, "api_key is missing, unknown or revoked")
        key_name = key.name
    wait = _limits().retry_after(key_name)
    if wait:
        error = Open311Error(429, f"too many requests for this api_key: retry in {wait} seconds")
        error.retry_after = wait  # type: ignore[attr-defined]
        raise error
    now = utcnow()
    with runtime.db.scope() as session:
        known = set(session.scalars(select(Agency.code).where(Agency.active.is_(True))))
        ticket = open_ticket(session, validate_post(form, known), client=key_name, now=now)
        key = find_active(session, (form.get("api_key") or "").strip())
        if key is not None:
            key.last_used_at = now
        session.flush()
        ticket_id, number = ticket.id, ticket.number
    try:
        runtime.pipeline.route([ticket_id])
    except Exception:  # stays "new": the sweeper routes it on its next round
        log.exception("routing Open311 request %s failed; the sweeper retries", number)
    document = [{"service_request_id": number, "service_notice": NOTICE, "account_id": None,
                 "requested_datetime": iso(now)}]
    return _respond(fmt, document, "service_requests", "request")
