"""The fields of an Open311 ``POST requests``, read as the client sent them and checked one by one: the first
problem is answered as a 400 naming the field, so a client's developer can fix it without asking.

The app's request object quietly strips control characters from every form (right for people typing into our
pages); a machine client sending them has a bug it should hear about, so these fields are read again from the
raw body. Personal fields the spec allows (``first_name``, ``last_name``, ``email``, ``phone``, ``device_id``,
``account_id``) are accepted and never stored.
"""

from __future__ import annotations

import io
import math
import re
from typing import Any

from flask import current_app, request
from werkzeug.datastructures import MultiDict
from werkzeug.formparser import FormDataParser

from ntbcare.core.security import http_url
from ntbcare.pipeline.accountability.intake import ServiceRequest
from ntbcare.pipeline.accountability.open311 import Open311Error

MAX_DESCRIPTION = 8000
MAX_ADDRESS = 500
MAX_MEDIA_URL = 2000
# C0 controls but tab, line feed and carriage return (a web form's line break), DEL, C1, and the bidirectional
# overrides that reorder what an operator reads.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def raw_form() -> MultiDict[str, str]:
    """The POSTed fields exactly as sent (``request.form`` is the cleaned copy)."""
    data = request.get_data(cache=True)  # kept, so request.form still parses from it
    parser = FormDataParser(max_form_memory_size=current_app.config.get("MAX_FORM_MEMORY_SIZE"), cls=MultiDict,
                            max_form_parts=request.max_form_parts)  # the same limits as request.form
    _, form, _ = parser.parse(io.BytesIO(data), request.mimetype, len(data), request.mimetype_params)
    return form


def check_controls(form: MultiDict[str, str]) -> None:
    for name, value in form.items(multi=True):
        match = CONTROL.search(name) or CONTROL.search(value)
        if match:
            raise Open311Error(400, f"{CONTROL.sub('?', name)} contains a control character "
                                    f"(U+{ord(match.group()):04X}): send plain text")


def _coordinate(value: str | None, name: str, bound: float) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        number = float(value)
    except ValueError:
        raise Open311Error(400, f"{name} must be a decimal number (WGS84)") from None
    if not math.isfinite(number) or abs(number) > bound:
        raise Open311Error(400, f"{name} must lie between -{bound:g} and {bound:g}")
    return number


def _media_url(form: Any) -> str | None:
    value = (form.get("media_url") or "").strip()
    if not value:
        return None
    if len(value) > MAX_MEDIA_URL:
        raise Open311Error(400, f"media_url is longer than {MAX_MEDIA_URL} characters")
    if http_url(value) is None:
        raise Open311Error(400, "media_url must be an absolute http or https URL")
    return value


def validate_post(form: Any, known_codes: set[str]) -> ServiceRequest:
    """Every field checked, the first problem named (a 400 the client can act on)."""
    check_controls(form)
    attributes = sorted(name for name in form if name.startswith("attribute["))
    if attributes:
        raise Open311Error(400, f"{attributes[0]} is not accepted: no service of this server has attributes "
                                "(services.json says metadata false)")
    code = (form.get("service_code") or "").strip()
    if not code:
        raise Open311Error(400, "service_code is required (see services.json)")
    if code not in known_codes:
        raise Open311Error(400, f"service_code {code!r} is not a service of this server (see services.json)")
    lat = _coordinate(form.get("lat"), "lat", 90)
    lon = _coordinate(form.get("long"), "long", 180)
    if (lat is None) != (lon is None):
        raise Open311Error(400, "lat and long must be given together")
    address = (form.get("address_string") or "").strip()
    if len(address) > MAX_ADDRESS:
        raise Open311Error(400, f"address_string is longer than {MAX_ADDRESS} characters")
    if lat is None and not address:
        if form.get("address_id"):
            raise Open311Error(400, "address_id is not supported: send lat and long or address_string")
        raise Open311Error(400, "a location is required: lat and long, or address_string")
    description = (form.get("description") or "").strip()
    if not description:
        raise Open311Error(400, "description is required: what is wrong, and where")
    if len(description) > MAX_DESCRIPTION:
        raise Open311Error(400, f"description is longer than {MAX_DESCRIPTION} characters")
    return ServiceRequest(service_code=code, description=description, lat=lat, long=lon,
                          address_string=address or None, media_url=_media_url(form))
