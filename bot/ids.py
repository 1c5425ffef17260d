"""Facebook ids from payloads, checked before they take part in a Graph request.

Ids come from webhook bodies and end up in URL paths; one that is not an id (``1_../../<page>/feed?x=``) could
point a reply at another object. Object ids are digits, or two groups of digits joined by ``_`` (post and
comment ids); anything else is refused before a request is built, and every path segment is quoted whole.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from bot.errors import InvalidGraphIdError, InvalidRequestError

GRAPH_ID = re.compile(r"[0-9]+(?:_[0-9]+)?")  # ASCII digits only: \d would take any script's digits


def graph_id(value: object) -> str:
    """``value`` when it is a Graph object id; otherwise ``InvalidGraphIdError`` (never retried)."""
    if isinstance(value, str) and GRAPH_ID.fullmatch(value):
        return value
    raise InvalidGraphIdError(f"not a Facebook object id: {str(value)[:100]!r}")


def path_segment(value: str) -> str:
    """``value`` as one URL path segment: quoted whole, so it cannot add segments, a query or a fragment."""
    if value in ("", ".", ".."):
        raise InvalidRequestError(f"not a Graph path segment: {value!r}")
    return quote(value, safe="")
