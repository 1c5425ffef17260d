"""A stand-in for Facebook's CDN on 127.0.0.1, over real TLS, for the attachment downloader's tests.

The downloader is pointed at it the only way the code allows: a fetcher built with a resolver (CDN names
resolve to a public address, or to whatever a test says), ``loopback_port`` (connect here instead of to that
address, every check unchanged) and ``verify`` (this stand-in's certificate, made for the CDN names and
``evil.example.com``). Whatever reaches the stand-in is recorded, so a test can say what was never fetched.
"""

from __future__ import annotations

import hashlib
import ssl
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from ntbcare.core.cdn import CdnFetcher

CDN = "https://scontent.xx.fbcdn.net"
FACEBOOK_ADDRESS = "157.240.1.35"  # public: what a CDN name resolves to unless a test says otherwise
NAMES = ("*.fbcdn.net", "*.xx.fbcdn.net", "*.fbsbx.com", "cdn.fbsbx.com", "lookaside.fbsbx.com", "evil.example.com")
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 40 + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.7\n" + b"x" * 200


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the CDN names (the fetcher trusts it through ``verify``) and its key."""
    cert, key = folder / "cdn-cert.pem", folder / "cdn-key.pem"
    names = ",".join(f"DNS:{name}" for name in NAMES)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=cdn-standin",
                    "-addext", f"subjectAltName={names}", "-addext", "basicConstraints=critical,CA:FALSE"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@dataclass
class Answer:
    """What the stand-in answers for one path: a status, headers and a body (bytes, or chunks sent slowly)."""

    status: int = 200
    content_type: str | None = "image/jpeg"
    body: bytes | list[bytes] = JPEG
    headers: dict[str, str] = field(default_factory=dict)
    length: bool = True  # send Content-Length (False: chunked, the size unknown until the end)
    delay: float = 0.0  # seconds before answering (keeps a download in flight)


class CdnStandIn:
    """The WSGI app: ``files`` answers per path (a list is consumed one answer per request, the last repeats);
    ``requests`` records (host, path) of everything received."""

    def __init__(self) -> None:
        self.files: dict[str, Answer | list[Answer]] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def serve(self, path: str, *answers: Answer) -> str:
        """Answer ``path`` with ``answers`` in turn; returns the CDN URL of the path."""
        self.files[path] = list(answers) if len(answers) > 1 else answers[0]
        return CDN + path

    def paths(self) -> list[str]:
        return [path for _, path in self.requests]

    def _answer(self, path: str) -> Answer:
        with self._lock:
            found = self.files.get(path)
            if isinstance(found, list):
                return found.pop(0) if len(found) > 1 else found[0]
            return found or Answer(status=404, content_type="text/plain", body=b"not found")

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        request = Request(environ)
        with self._lock:
            self.requests.append((request.host, request.full_path.rstrip("?")))
        answer = self._answer(request.path)
        if answer.delay:
            time.sleep(answer.delay)
        chunks = answer.body if isinstance(answer.body, list) else [answer.body]
        headers = dict(answer.headers)
        if answer.content_type:
            headers["Content-Type"] = answer.content_type
        if answer.length:
            headers["Content-Length"] = str(sum(len(c) for c in chunks))
        response = Response(_slowly(chunks) if len(chunks) > 1 else chunks[0], status=answer.status,
                            headers=headers, direct_passthrough=True)
        if not answer.content_type:
            response.headers.pop("Content-Type", None)
        return response(environ, start_response)


def _slowly(chunks: Iterable[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        yield chunk
        time.sleep(0.01)


class Resolver:
    """CDN names resolve to a public Facebook address unless ``addresses`` says otherwise; ``asked`` records."""

    def __init__(self, addresses: dict[str, list[str]] | None = None) -> None:
        self.addresses = dict(addresses or {})
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return self.addresses.get(host, [FACEBOOK_ADDRESS])


@dataclass
class RunningCdn:
    app: CdnStandIn
    port: int
    cert: Path
    resolver: Resolver

    def fetcher(self, **options: float) -> CdnFetcher:
        return CdnFetcher(resolve=self.resolver, loopback_port=self.port, verify=str(self.cert), **options)


@contextmanager
def cdn_standin(folder: Path) -> Iterator[RunningCdn]:
    """The stand-in served over TLS on a kernel-chosen loopback port."""
    cert, key = make_certificate(folder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    app = CdnStandIn()
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="cdn-standin",
                              daemon=True)
    thread.start()
    try:
        yield RunningCdn(app, server.server_port, cert, Resolver())
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
