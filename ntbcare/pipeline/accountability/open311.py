"""Open311 GeoReport v2 documents: services, service requests and errors as the spec names them, in JSON and
XML, plus the parsing of the ``GET requests`` parameters with the spec's defaults and limits.

A *service* is a routing target (an agency), not a complaint category: NTB Care routes by who must answer,
the deadline and the public figures are per agency, and the registry of agencies is the only catalogue the
province maintains. ``service_code`` is therefore the agency's code, as on the transparency page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

from ntbcare.pipeline.accountability.anonymise import PublicTicket
from ntbcare.pipeline.accountability.periods import WITA

JURISDICTION = "ntbprov.go.id"
DEFAULT_DAYS = 90
MAX_SPAN = timedelta(days=90)
MAX_REQUESTS = 1000
STATUSES = ("open", "closed")
REQUEST_FIELDS = ("service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                  "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
                  "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url")
_NUMBER = re.compile(r"^NTB-\d{4}-\d{6}$")
# What XML 1.0 forbids in a document (saxutils.escape leaves it): C0 controls but tab, LF and CR, lone surrogates,
# U+FFFE and U+FFFF. A stored text from any channel may hold one; the feed must stay parseable for everyone.
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class Open311Error(Exception):
    """An error answered as the spec's error array; ``code`` is also the HTTP status."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code, self.description = code, description


def iso(value: datetime | None) -> str | None:
    """W3C datetime with the WITA offset, as Open311 clients expect local time with an offset."""
    return value.astimezone(WITA).isoformat(timespec="seconds") if value is not None else None


def request_document(ticket: PublicTicket) -> dict[str, Any]:
    """One service request with every field of the spec (absent values as null)."""
    return {
        "service_request_id": ticket.service_request_id,
        "status": ticket.status,
        "status_notes": ticket.status_notes,
        "service_name": ticket.service_name,
        "service_code": ticket.service_code,
        "description": ticket.description,
        "agency_responsible": ticket.service_name,
        "service_notice": None,
        "requested_datetime": iso(ticket.requested_datetime),
        "updated_datetime": iso(ticket.updated_datetime),
        "expected_datetime": iso(ticket.expected_datetime),
        "address": ticket.address,
        "address_id": None,
        "zipcode": None,
        "lat": ticket.lat,
        "long": ticket.long,
        "media_url": None,  # photos may show people: never published
    }


def parse_datetime(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} must be a W3C datetime such as 2026-11-01T00:00:00+08:00") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=WITA)


@dataclass(frozen=True)
class RequestQuery:
    """What ``GET requests`` asked for: ids (which override everything else) or a filtered span."""

    ids: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(part.strip() for part in (value or "").split(",") if part.strip()))


def parse_query(args: Mapping[str, str], now: datetime) -> RequestQuery:
    """The spec's parameters: ``service_request_id`` (comma list, overrides the others), ``service_code``,
    ``start_date``, ``end_date`` (at most 90 days apart; the last 90 days by default) and ``status``."""
    ids = _list(args.get("service_request_id"))
    if ids:
        if len(ids) > MAX_REQUESTS:
            raise Open311Error(400, f"service_request_id lists at most {MAX_REQUESTS} ids")
        bad = [i for i in ids if not _NUMBER.match(i.upper())]
        if bad:
            raise Open311Error(400, f"service_request_id {bad[0]!r} is not a request id such as NTB-2026-000123")
        return RequestQuery(ids=tuple(i.upper() for i in ids))
    statuses = _list(args.get("status"))
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise Open311Error(400, f"status must be open, closed or both (comma-separated), not {unknown[0]!r}")
    start = parse_datetime(args["start_date"], "start_date") if args.get("start_date") else None
    end = parse_datetime(args["end_date"], "end_date") if args.get("end_date") else None
    if start is None and end is None:
        end = now
    if start is None:
        start = (end or now) - MAX_SPAN
    if end is None:
        end = min(now, start + MAX_SPAN)
    if end < start:
        raise Open311Error(400, "end_date must not be before start_date")
    if end - start > MAX_SPAN:
        raise Open311Error(400, "start_date and end_date may be at most 90 days apart")
    return RequestQuery(service_codes=_list(args.get("service_code")), statuses=statuses, start=start, end=end)


def errors_document(error: Open311Error) -> list[dict[str, Any]]:
    return [{"code": error.code, "description": error.description}]


def to_xml(root: str, item: str | None, document: Any) -> str:
    """The spec's XML form of ``document``: a list becomes ``<root><item>…</item>…</root>``, a mapping
    becomes ``<root>…</root>``; lists inside a mapping use the singular of their name (endpoints/endpoint)."""
    return '<?xml version="1.0" encoding="utf-8"?>' + _element(root, document, item)


def _element(name: str, value: Any, item: str | None = None) -> str:
    if value is None:
        return f"<{name}/>"
    if isinstance(value, Mapping):
        return f"<{name}>" + "".join(_element(k, v) for k, v in value.items()) + f"</{name}>"
    if isinstance(value, Sequence) and not isinstance(value, str):
        child = item or (name[:-1] if name.endswith("s") else "item")
        return f"<{name}>" + "".join(_element(child, v) for v in value) + f"</{name}>"
    if isinstance(value, bool):
        return f"<{name}>{'true' if value else 'false'}</{name}>"
    return f"<{name}>{escape(xml_text(str(value)))}</{name}>"


def xml_text(value: str) -> str:
    """``value`` without the characters XML 1.0 does not allow."""
    return _NOT_XML.sub("", value)
