"""Graph API errors, typed by what the caller has to do next.

Meta's HTTP status says little (most errors are 400, some transient ones 500), so the class is chosen from the
error ``code``/``error_subcode``; only a 5xx without a readable code is classified by its status.

``AmbiguousOutcomeError`` is deliberately *not* a ``TransientGraphError``: a write that may have happened
must be reconciled (read back) before it is sent again, never retried blindly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import requests
import urllib3.exceptions

from bot.ratelimit import DEFAULT_BLOCK_SECONDS, parse_usage_headers

THROTTLING_CODES = frozenset({4, 17, 32, 341, 613, 80001, 80006})
TRANSIENT_CODES = frozenset({1, 2})
NOT_TRANSIENT_SERVICE_SUBCODE = 2018344
TOKEN_INVALID_CODE = 190
OUTSIDE_WINDOW_SUBCODES = frozenset({2018278, 2534022})
UNREACHABLE_CODE = 551
POLICY_BLOCK_CODE = 368
DUPLICATE_CODES = frozenset({506, 10900})
NO_APP_ROLE_CODE = 2018108
PERMISSION_CODES = frozenset({3, 10, *range(200, 300)})
POLICY_BLOCK_RETRY_SECONDS = 3600.0
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MASK = "***"

_NEVER_SENT_REASONS = (
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.ConnectTimeoutError,
    urllib3.exceptions.NameResolutionError,
    urllib3.exceptions.SSLError,
)
_BAD_REQUEST_EXCEPTIONS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
    requests.exceptions.URLRequired,
)


class GraphError(Exception):
    """Base class: a Graph call failed. ``is_transient`` says whether retrying later (blindly) is safe."""

    is_transient = False

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        code: int | None = None,
        subcode: int | None = None,
        error_type: str | None = None,
        fbtrace_id: str | None = None,
        user_title: str | None = None,
        user_message: str | None = None,
        reported_transient: bool | None = None,
    ) -> None:
        self.message = message
        self.http_status = http_status
        self.code = code
        self.subcode = subcode
        self.type = error_type
        self.fbtrace_id = fbtrace_id
        self.user_title = user_title
        self.user_message = user_message
        self.reported_transient = reported_transient
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [f"(#{self.code}" + (f"/{self.subcode})" if self.subcode is not None else ")")]
        parts.append(self.message)
        details = [f"HTTP {self.http_status}"] if self.http_status is not None else []
        if self.fbtrace_id:
            details.append(f"fbtrace_id {self.fbtrace_id}")
        if details:
            parts.append(f"[{', '.join(details)}]")
        return " ".join(parts) if self.code is not None else " ".join(parts[1:])


class TransientGraphError(GraphError):
    """Temporary failure where nothing was written (or the call was a read): retry later with backoff."""

    is_transient = True


class RateLimitedError(TransientGraphError):
    """Throttled by Meta: stop calling until ``retry_after_seconds`` have passed (calls extend the block)."""

    def __init__(
        self, message: str, *, retry_after_seconds: float = DEFAULT_BLOCK_SECONDS, **kwargs: Any
    ) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__(message, **kwargs)


class PolicyBlockedError(TransientGraphError):
    """Code 368, temporarily blocked for policy violations: retry only after hours, and alert a human."""

    def __init__(
        self, message: str, *, retry_after_seconds: float = POLICY_BLOCK_RETRY_SECONDS, **kwargs: Any
    ) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__(message, **kwargs)


class ConnectionFailedError(TransientGraphError):
    """The request never reached Meta (connect timeout, refused, DNS, TLS handshake): safe to retry."""


class AmbiguousOutcomeError(GraphError):
    """The write MAY have happened (read timeout, reset mid-response, code 1/2 on a POST): reconcile first."""


class TokenInvalidError(GraphError):
    """Code 190: the Page token is expired or revoked. Stop sending and alert an administrator."""


class OutsideWindowError(GraphError):
    """The person cannot be reached on this channel now (outside the window, code 551): fall back."""


class GraphPermissionError(GraphError):
    """A permission, feature or configuration is missing (3, 10, 200-299): do not retry, alert."""


class DuplicatePostError(GraphError):
    """Meta refused a duplicate (506, or a second private reply): the earlier write counts as done."""


class InvalidRequestError(GraphError):
    """Our request is wrong (100 and other 4xx): retrying the same call cannot succeed."""


class InvalidGraphIdError(InvalidRequestError):
    """An id from a payload is not a Facebook object id: refused before any request, never retried."""


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _as_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _error_object(body: bytes | str | Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The ``error`` object of a Graph response body, or None for empty, HTML or otherwise odd bodies."""
    parsed: Any = body
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            parsed = json.loads(body)
        except ValueError:
            return None
    if not isinstance(parsed, Mapping):
        return None
    error = parsed.get("error")
    if isinstance(error, Mapping):
        return error
    if isinstance(error, str) and error:
        return {"message": parsed.get("error_description") or error}
    return None


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def _choose_class(
    status: int, code: int | None, subcode: int | None, reported_transient: bool | None, is_write: bool
) -> type[GraphError]:
    """The error class for a code/subcode pair; the HTTP status only matters when there is no code."""
    transient_class = AmbiguousOutcomeError if is_write else TransientGraphError
    if code is None:
        if status == 429:
            return RateLimitedError
        if status >= 500:
            return TransientGraphError
        return InvalidRequestError if 400 <= status < 500 else transient_class
    if code == TOKEN_INVALID_CODE:
        return TokenInvalidError
    if code in THROTTLING_CODES:
        return RateLimitedError
    if code == POLICY_BLOCK_CODE:
        return PolicyBlockedError
    if code == UNREACHABLE_CODE or (code == 10 and subcode in OUTSIDE_WINDOW_SUBCODES):
        return OutsideWindowError
    if NO_APP_ROLE_CODE in (code, subcode) or (code == 2 and subcode == NOT_TRANSIENT_SERVICE_SUBCODE):
        return GraphPermissionError
    if code in TRANSIENT_CODES:
        return transient_class
    if code in DUPLICATE_CODES:
        return DuplicatePostError
    if code in PERMISSION_CODES:
        return GraphPermissionError
    if reported_transient or (code != 100 and status >= 500):
        return transient_class
    return InvalidRequestError


def parse_graph_error(
    status: int,
    body: bytes | str | Mapping[str, Any] | None,
    headers: Mapping[str, Any] | None = None,
    *,
    method: str = "GET",
    redact: Iterable[str] = (),
) -> GraphError:
    """Turn a failed Graph response into the matching ``GraphError``; never raises, whatever the body.

    ``method`` matters for codes 1/2: on a write they become ``AmbiguousOutcomeError``. Strings in ``redact``
    (tokens, proofs) are masked in the message.
    """
    secrets = tuple(redact)
    error = _error_object(body) or {}
    code = _as_int(error.get("code"))
    subcode = _as_int(error.get("error_subcode"))
    reported = error.get("is_transient")
    reported_transient = reported if isinstance(reported, bool) else None
    is_write = method.upper() not in READ_METHODS
    error_class = _choose_class(status, code, subcode, reported_transient, is_write)
    message = _as_text(error.get("message")) or f"HTTP {status} without a readable Graph error body"
    kwargs: dict[str, Any] = {
        "http_status": status,
        "code": code,
        "subcode": subcode,
        "error_type": _as_text(error.get("type")),
        "fbtrace_id": _as_text(error.get("fbtrace_id")),
        "user_title": _as_text(error.get("error_user_title")),
        "user_message": _as_text(error.get("error_user_msg")),
        "reported_transient": reported_transient,
    }
    if error_class is RateLimitedError:
        kwargs["retry_after_seconds"] = parse_usage_headers(headers).regain_seconds or DEFAULT_BLOCK_SECONDS
    return error_class(_redact(message, secrets), **kwargs)


def _never_reached_server(exc: requests.RequestException) -> bool:
    """True when the request certainly was not sent: connect timeout, refused, DNS, TLS handshake."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError):
        return False
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    return isinstance(reason, _NEVER_SENT_REASONS)


def transport_error(method: str, exc: requests.RequestException, *, redact: Iterable[str] = ()) -> GraphError:
    """Map a ``requests`` failure (no HTTP response) to what the caller may do.

    Only failures before the request left us are safe to retry for a write; a read timeout or a reset after
    sending is ambiguous. Raise the result ``from None``: the original's text may carry the token in a URL.
    """
    message = _redact(f"{type(exc).__name__}: {exc}", tuple(redact))
    if isinstance(exc, _BAD_REQUEST_EXCEPTIONS):
        return InvalidRequestError(message)
    if _never_reached_server(exc):
        return ConnectionFailedError(message)
    if method.upper() in READ_METHODS:
        return TransientGraphError(message)
    return AmbiguousOutcomeError(message)
