"""Fetching one attachment from Facebook's CDN into a private temporary file: the one place where NTB Care
downloads what a citizen's payload points at, so every rule against server-side request forgery lives here.

- Only https URLs on Facebook's CDN (:func:`ntbcare.core.security.cdn_target`), checked again at every
  redirect, which is followed by hand (at most ``MAX_REDIRECTS``).
- The host is resolved here and every address it resolves to must be public; the connection goes to that very
  address with TLS verified for the host name, so a second DNS answer cannot send it somewhere else.
- Connect and read timeouts, and a deadline for the whole download; never more than ``max_bytes`` read (a
  Content-Length over it is refused before any byte), no compressed bodies (no decompression bombs).
- Only the kept content types, and bytes that look like the type claimed.

The outcome is the return value or an exception: :class:`FetchRefused` is final (a 403, 404 or 410 too:
Facebook's links expire), :class:`FetchFailed` is worth another try later.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests
import urllib3
from requests.adapters import HTTPAdapter

from ntbcare.core.media_rules import ALLOWED_TYPES, SNIFF_BYTES, content_type_of, looks_like, type_refusal
from ntbcare.core.media_store import MediaStore
from ntbcare.core.security import cdn_target, public_address

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 15.0
DEADLINE_SECONDS = 120.0
MAX_REDIRECTS = 3
CHUNK_BYTES = 64 * 1024
REDIRECTS = frozenset({301, 302, 303, 307, 308})
EXPIRED = frozenset({403, 404, 410})
USER_AGENT = "NTBCare-media/1.0"

Resolver = Callable[[str, int], list[str]]


class FetchRefused(Exception):
    """Final: this URL will never give a file we keep; the message says why."""


class FetchFailed(Exception):
    """Transient: the CDN or the network failed this time; try again later."""


@dataclass(frozen=True)
class Fetched:
    """A complete download in a 0600 temporary file under MEDIA_DIR, not yet kept."""

    temp_path: Path
    size: int
    sha256: str
    content_type: str


def system_resolve(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host``, in its order, each once."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _PinnedHost(HTTPAdapter):
    """Connects wherever the URL says (an IP address) but speaks TLS to ``host``: SNI and certificate check."""

    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__(max_retries=0)  # retries are the database's business, with backoff

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self.host
        kwargs["assert_hostname"] = self.host
        super().init_poolmanager(*args, **kwargs)


class CdnFetcher:
    """Downloads attachment URLs under the rules above.

    ``resolve`` replaces the system resolver and ``verify`` names a CA bundle (tests). ``loopback_port`` is for
    tests only: connect to 127.0.0.1 on that port instead of the checked address, every check (the URL, the
    resolved addresses, TLS for the host name) unchanged. No setting reaches these: the service always connects
    to the address it checked, trusting the system's CAs.
    """

    def __init__(self, *, resolve: Resolver | None = None, loopback_port: int | None = None,
                 verify: bool | str = True, connect_timeout: float = CONNECT_TIMEOUT,
                 read_timeout: float = READ_TIMEOUT, deadline_seconds: float = DEADLINE_SECONDS) -> None:
        if loopback_port is not None and not 0 < loopback_port < 65536:
            raise ValueError("loopback_port must be a TCP port")
        self.resolve, self.loopback_port, self.verify = resolve, loopback_port, verify
        self.timeout = (connect_timeout, read_timeout)
        self.deadline_seconds = deadline_seconds

    def fetch(self, url: str, *, max_bytes: int, store: MediaStore) -> Fetched:
        """Download ``url`` (following checked redirects) into a temporary file of ``store``."""
        deadline = time.monotonic() + self.deadline_seconds
        current = url
        with requests.Session() as session:
            session.trust_env = False  # no proxy from the environment: it would connect for us, unchecked
            for _hop in range(MAX_REDIRECTS + 1):
                response = self._request(session, current)
                try:
                    if response.status_code not in REDIRECTS:
                        return self._body(response, max_bytes, store, deadline)
                    location = response.headers.get("Location")
                    if not location:
                        raise FetchRefused(f"HTTP {response.status_code} redirect without a Location")
                    current = urljoin(current, location)
                finally:
                    response.close()
        raise FetchRefused(f"more than {MAX_REDIRECTS} redirects")

    def _address(self, host: str) -> str:
        try:
            addresses = (self.resolve or system_resolve)(host, 443)
        except OSError as exc:
            raise FetchFailed(f"cannot resolve {host}: {exc}") from None
        if not addresses:
            raise FetchFailed(f"cannot resolve {host}: no address")
        private = [address for address in addresses if not public_address(address)]
        if private:
            raise FetchRefused(f"{host} resolves to a non-public address ({private[0]})")
        return addresses[0]

    def _request(self, session: requests.Session, url: str) -> requests.Response:
        """One checked hop: the URL's host resolved and verified, then one GET to that address."""
        target = cdn_target(url)
        if isinstance(target, str):
            raise FetchRefused(target)
        address = self._address(target.host)
        if self.loopback_port is not None:
            connect_to = f"127.0.0.1:{self.loopback_port}"
        else:
            connect_to = f"[{address}]:443" if ":" in address else f"{address}:443"
        session.mount("https://", _PinnedHost(target.host))
        headers = {"Host": target.host, "User-Agent": USER_AGENT, "Accept": ", ".join(ALLOWED_TYPES),
                   "Accept-Encoding": "identity"}
        try:
            response = session.get(f"https://{connect_to}{target.path}", headers=headers, stream=True,
                                   allow_redirects=False, timeout=self.timeout, verify=self.verify)
        except requests.RequestException as exc:
            raise FetchFailed(f"{target.host}: {type(exc).__name__}") from None
        status = response.status_code
        if status in REDIRECTS or status == 200:
            return response
        response.close()
        if status in EXPIRED:
            raise FetchRefused(f"HTTP {status} from {target.host}: the link expired or the file was removed")
        if status == 429 or status >= 500:
            raise FetchFailed(f"HTTP {status} from {target.host}")
        raise FetchRefused(f"HTTP {status} from {target.host}")

    def _body(self, response: requests.Response, max_bytes: int, store: MediaStore, deadline: float) -> Fetched:
        content_type = content_type_of(response.headers.get("Content-Type"))
        refusal = type_refusal(content_type)
        if refusal:
            raise FetchRefused(refusal)
        encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding != "identity":
            raise FetchRefused(f"compressed body ({encoding[:20]}) instead of the file itself")
        declared = (response.headers.get("Content-Length") or "").strip()
        if declared.isdigit() and int(declared) > max_bytes:
            raise FetchRefused(f"larger than MEDIA_MAX_BYTES ({int(declared)} > {max_bytes} bytes, by its "
                               "Content-Length)")
        fd, temp = store.temp_file()
        kept = False
        try:
            size, digest, head = _copy(response, fd, max_bytes, deadline, self.deadline_seconds)
            if size == 0:
                raise FetchRefused("empty body")
            if not looks_like(content_type, head):
                raise FetchRefused(f"the bytes are not {content_type}")
            kept = True
            return Fetched(temp, size, digest, content_type)
        finally:
            if not kept:
                store.discard(temp)


def _copy(response: requests.Response, fd: int, max_bytes: int, deadline: float,
          seconds: float) -> tuple[int, str, bytes]:
    """Stream the body into ``fd`` as it arrives, at most ``max_bytes``; returns size, SHA-256 and first bytes."""
    digest, size, head = hashlib.sha256(), 0, b""
    with os.fdopen(fd, "wb") as out:
        while True:
            if time.monotonic() > deadline:
                raise FetchFailed(f"the download took longer than {seconds:.0f} s")
            try:
                chunk = response.raw.read1(CHUNK_BYTES, decode_content=False)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise FetchFailed(f"the download broke off: {type(exc).__name__}") from None
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise FetchRefused(f"larger than MEDIA_MAX_BYTES ({max_bytes} bytes)")
            if len(head) < SNIFF_BYTES:
                head += chunk[: SNIFF_BYTES - len(head)]
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return size, digest.hexdigest(), head
