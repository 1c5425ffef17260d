"""Small guards shared by every layer: URLs from Facebook, secrets in log lines, text people typed, file modes.

They live in the core so the mailer, the web pages, the CLI and the routing model agree on one rule each.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

MODEL_SIGNING_CONTEXT = b"ntbcare routing-model signing key v1"
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700

# Facebook's CDN, where attachment URLs point (shared/facebook-graph.md: scontent.xx.fbcdn.net; files and
# lookaside links on fbsbx.com). Nothing else is ever fetched.
CDN_SUFFIXES = (".fbcdn.net", ".fbsbx.com")
CDN_HOSTS = frozenset({"cdn.fbsbx.com", "lookaside.fbsbx.com"})
# A link token is everything after /a/, /agency/login/ or /media/ up to the next separator a URL or a log line uses.
_TOKEN_PATH = re.compile(r"(/a/|/agency/login/|/media/)[^/\s?#\"'<>]+")
# Graph API credentials in a URL's query (urllib3 logs request lines at DEBUG): the page token and its proof.
_QUERY_SECRET = re.compile(r"\b(access_token|appsecret_proof|input_token|client_secret)=[^&\s\"'<>]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_URL_IN_TEXT = re.compile(r"\b(?:https?|ftp)://[^\s<>\"]+|\bwww\.[^\s<>\"]+", re.IGNORECASE)
REDACTED = "[disembunyikan]"


def http_url(value: str | None) -> str | None:
    """``value`` when it is an absolute http(s) URL with a host, else None: never a javascript: or data: link."""
    if not value or any(ch.isspace() or ord(ch) < 32 for ch in value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() in {"http", "https"} and parts.hostname:
        return value
    return None


def facebook_url(value: str | None) -> str | None:
    """``value`` when it is an https link to Facebook itself (facebook.com or a subdomain), else None."""
    if not http_url(value):
        return None
    parts = urlsplit(value or "")
    host = (parts.hostname or "").lower()
    if parts.scheme.lower() == "https" and (host == "facebook.com" or host.endswith(".facebook.com")):
        return value
    return None


@dataclass(frozen=True)
class CdnTarget:
    """A URL that passed :func:`cdn_target`: the host to verify TLS for, and the path with its query."""

    host: str
    path: str


def cdn_target(value: str | None) -> CdnTarget | str:
    """The parts of an https URL on Facebook's CDN, or why it is refused (a sentence).

    Only https on the default port, an ASCII host that is one of :data:`CDN_HOSTS` or ends in one of
    :data:`CDN_SUFFIXES`, and no user part: the caller connects to an address it resolved itself for this host,
    never to whatever another URL parser might read into the string.
    """
    if not value or any(ch.isspace() or ord(ch) < 32 or ch == "\\" for ch in value):
        return "not a URL"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return "not a URL"
    host = (parts.hostname or "").lower()
    if parts.scheme.lower() != "https":
        return f"not https ({parts.scheme or 'no scheme'})"
    if "@" in parts.netloc:
        return "a user name in the URL"
    if port not in (None, 443):
        return f"port {port} instead of 443"
    if not host.isascii() or not (host in CDN_HOSTS or host.endswith(CDN_SUFFIXES)):
        return f"host {host[:80]!r} is not Facebook's CDN"
    return CdnTarget(host, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))


def public_address(address: str) -> bool:
    """Whether ``address`` is a public (global unicast) IP: never loopback, private, link-local, shared, reserved,
    multicast or an IPv4 address mapped into IPv6, so a CDN name cannot be pointed at our own network."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and (ip.ipv4_mapped or ip.sixtofour or ip.teredo):
        return False
    return ip.is_global and not ip.is_multicast


def model_signing_key(secret_key: str) -> bytes:
    """The key that signs the routing model, derived from SECRET_KEY so it differs from the session key."""
    return hmac.new(secret_key.encode("utf-8"), MODEL_SIGNING_CONTEXT, hashlib.sha256).digest()


def redact_tokens(text: str) -> str:
    """``text`` with every agency link token (``/a/<token>``, ``/agency/login/<token>``) and every Graph
    credential in a query string (``access_token=``, ``appsecret_proof=``) replaced."""
    text = _QUERY_SECRET.sub(lambda match: match.group(1) + "=" + REDACTED, text)
    return _TOKEN_PATH.sub(lambda match: match.group(1) + REDACTED, text)


def strip_controls(value: str) -> str:
    """``value`` without control or bidirectional-override characters (newline and tab stay)."""
    return _CONTROL.sub("", value)


def defang_url(url: str) -> str:
    """A citizen's URL as text nobody mistakes for our link: scheme defanged, dots of the host bracketed."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        host, slash, tail = url.partition("/")
        return host.replace(".", "[.]") + slash + tail
    host, slash, tail = rest.partition("/")
    defanged_scheme = {"http": "hxxp", "https": "hxxps", "ftp": "fxp"}.get(scheme.lower(), scheme)
    return f"{defanged_scheme}[://]{host.replace('.', '[.]')}{slash}{tail}"


def defang_text(text: str) -> str:
    """Every URL inside a citizen's text defanged (plain-text mail turns bare URLs into links)."""
    return _URL_IN_TEXT.sub(lambda match: defang_url(match.group(0)), text)


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a malformed record is still logged, as the logging module would
        return
    redacted = redact_tokens(message)
    if redacted != message:
        record.msg, record.args = redacted, None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact_tokens(record.exc_text)


def install_log_redaction() -> None:
    """Redact every record this process creates, whatever logger or handler takes it (idempotent).

    A record factory rather than a filter: logger filters miss records propagated from child loggers, and
    handler filters miss handlers added later (Flask's, pytest's).
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "ntbcare_redacting", False):
        return

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact_record(record)
        return record

    factory.ntbcare_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) 0700; an existing folder keeps the mode its owner gave it."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)


def private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 (whatever the umask) when missing; an existing file is left as is."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)
    os.chmod(path, PRIVATE_FILE_MODE)
