"""The edge where a citizen's attachment URL is fetched (ntbcare.core.cdn), against a TLS stand-in for Facebook's
CDN on loopback: only https on the CDN's hosts, every redirect re-checked, no private address, no more than
MEDIA_MAX_BYTES (with or without a Content-Length), only kept types whose bytes match, expired links final.
Every refusal leaves nothing on disk, and what is refused before connecting never reaches the stand-in."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest

from ntbcare.core.cdn import FetchFailed, FetchRefused
from ntbcare.core.media_store import MediaStore
from tests.cdn_standin import CDN, JPEG, PDF, PNG, Answer, RunningCdn, cdn_standin, sha256

MAX = 64 * 1024


@pytest.fixture
def cdn(tmp_path: Path) -> Iterator[RunningCdn]:
    with cdn_standin(tmp_path) as running:
        yield running


@pytest.fixture
def store(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path / "media")


def leftovers(store: MediaStore) -> list[Path]:
    return [p for p in store.root.rglob("*") if p.is_file()] if store.root.exists() else []


def refused(cdn: RunningCdn, store: MediaStore, url: str, **options: float) -> str:
    with pytest.raises(FetchRefused) as caught:
        cdn.fetcher(**options).fetch(url, max_bytes=MAX, store=store)
    assert leftovers(store) == []
    return str(caught.value)


def test_a_cdn_photo_arrives_whole_in_a_private_temporary_file(cdn, store):
    url = cdn.app.serve("/v/t1.15752-9/img.jpg", Answer(body=JPEG))
    fetched = cdn.fetcher().fetch(url + "?_nc_cat=1&oh=abc", max_bytes=MAX, store=store)
    assert fetched.temp_path.read_bytes() == JPEG and fetched.sha256 == sha256(JPEG)
    assert (fetched.size, fetched.content_type) == (len(JPEG), "image/jpeg")
    assert fetched.temp_path.stat().st_mode & 0o777 == 0o600
    assert cdn.app.requests == [("scontent.xx.fbcdn.net", "/v/t1.15752-9/img.jpg?_nc_cat=1&oh=abc")]
    assert cdn.resolver.asked == ["scontent.xx.fbcdn.net"]


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "chunked"])
def test_a_body_over_media_max_bytes_is_refused_and_nothing_stays_on_disk(cdn, store, length):
    big = JPEG + b"\x00" * MAX
    url = cdn.app.serve("/big.jpg", Answer(body=[big[:30000], big[30000:60000], big[60000:]], length=length))
    reason = refused(cdn, store, url)
    assert "larger than MEDIA_MAX_BYTES" in reason and ("Content-Length" in reason) == length


def test_exactly_media_max_bytes_is_kept(cdn, store):
    body = JPEG + b"\x00" * (MAX - len(JPEG))
    url = cdn.app.serve("/edge.jpg", Answer(body=[body[:MAX // 2], body[MAX // 2:]], length=False))
    assert cdn.fetcher().fetch(url, max_bytes=MAX, store=store).size == MAX


@pytest.mark.parametrize(("content_type", "body"), [("text/html", b"<html><script>x</script>"),
                                                     ("image/svg+xml", b"<svg onload=alert(1)>"),
                                                     ("application/octet-stream", PDF), (None, JPEG)])
def test_a_type_that_is_not_kept_is_refused_with_the_reason(cdn, store, content_type, body):
    url = cdn.app.serve("/thing", Answer(content_type=content_type, body=body))
    assert "is not a photo, video, audio or PDF" in refused(cdn, store, url)


def test_bytes_that_are_not_the_type_claimed_are_refused(cdn, store):
    url = cdn.app.serve("/fake.jpg", Answer(content_type="image/jpeg", body=b"<html>an error page</html>"))
    assert refused(cdn, store, url) == "the bytes are not image/jpeg"


def test_png_and_pdf_are_kept_with_their_types(cdn, store):
    for path, kind, body in (("/a.png", "image/png", PNG), ("/b.pdf", "application/pdf; qs=1", PDF)):
        fetched = cdn.fetcher().fetch(cdn.app.serve(path, Answer(content_type=kind, body=body)), max_bytes=MAX,
                                      store=store)
        assert fetched.content_type == kind.split(";")[0] and fetched.temp_path.read_bytes() == body


@pytest.mark.parametrize("url", [
    "https://evil.example.com/x.jpg",  # the stand-in's certificate covers it: only the allow-list stops it
    "http://scontent.xx.fbcdn.net/x.jpg",
    "https://fbcdn.net.evil.example.com/x.jpg",
    "https://scontent.xx.fbcdn.net:8443/x.jpg",
    "https://user@scontent.xx.fbcdn.net/x.jpg",
    "https://evil.example.com\\@scontent.xx.fbcdn.net/x.jpg",
    "file:///etc/passwd",
    "javascript:alert(1)",
])
def test_a_url_off_facebooks_cdn_is_never_fetched(cdn, store, url):
    cdn.app.serve("/x.jpg", Answer())
    refused(cdn, store, url)
    assert cdn.app.requests == [] and cdn.resolver.asked == []


@pytest.mark.parametrize("addresses", [["127.0.0.1"], ["10.1.2.3"], ["169.254.169.254"], ["::1"],
                                       ["157.240.1.35", "192.168.0.10"], ["::ffff:10.0.0.1"]])
def test_a_cdn_name_resolving_to_a_private_address_is_never_fetched(cdn, store, addresses):
    cdn.resolver.addresses["rebound.fbcdn.net"] = addresses
    cdn.app.serve("/x.jpg", Answer())
    assert "resolves to a non-public address" in refused(cdn, store, "https://rebound.fbcdn.net/x.jpg")
    assert cdn.app.requests == []


def test_a_redirect_off_the_cdn_is_not_followed(cdn, store):
    url = cdn.app.serve("/r.jpg", Answer(status=302, content_type=None, body=b"",
                                         headers={"Location": "https://evil.example.com/steal.jpg"}))
    cdn.app.serve("/steal.jpg", Answer())
    assert "is not Facebook's CDN" in refused(cdn, store, url)
    assert cdn.app.paths() == ["/r.jpg"]


def test_a_redirect_to_a_cdn_name_on_a_private_address_is_not_followed(cdn, store):
    cdn.resolver.addresses["inside.fbsbx.com"] = ["10.0.0.7"]
    url = cdn.app.serve("/r.jpg", Answer(status=307, content_type=None, body=b"",
                                         headers={"Location": "https://inside.fbsbx.com/x.jpg"}))
    assert "non-public address (10.0.0.7)" in refused(cdn, store, url)
    assert cdn.app.paths() == ["/r.jpg"]


def test_a_redirect_within_the_cdn_is_followed_and_checked_again(cdn, store):
    url = cdn.app.serve("/r.jpg", Answer(status=301, content_type=None, body=b"",
                                         headers={"Location": "https://lookaside.fbsbx.com/file.jpg"}))
    cdn.app.serve("/file.jpg", Answer())
    assert cdn.fetcher().fetch(url, max_bytes=MAX, store=store).sha256 == sha256(JPEG)
    assert cdn.app.requests == [("scontent.xx.fbcdn.net", "/r.jpg"), ("lookaside.fbsbx.com", "/file.jpg")]
    assert cdn.resolver.asked == ["scontent.xx.fbcdn.net", "lookaside.fbsbx.com"]


def test_a_redirect_loop_ends(cdn, store):
    url = cdn.app.serve("/loop.jpg", Answer(status=302, content_type=None, body=b"", headers={"Location": "/loop.jpg"}))
    assert refused(cdn, store, url) == "more than 3 redirects"
    assert cdn.app.paths() == ["/loop.jpg"] * 4


@pytest.mark.parametrize("status", [403, 404, 410])
def test_an_expired_link_is_final(cdn, store, status):
    url = cdn.app.serve("/gone.jpg", Answer(status=status, content_type="text/plain", body=b"URL signature expired"))
    assert f"HTTP {status}" in refused(cdn, store, url) and "expired" in refused(cdn, store, url)


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_a_server_error_or_throttling_is_worth_another_try(cdn, store, status):
    url = cdn.app.serve("/busy.jpg", Answer(status=status, content_type="text/plain", body=b"busy"))
    with pytest.raises(FetchFailed, match=f"HTTP {status}"):
        cdn.fetcher().fetch(url, max_bytes=MAX, store=store)
    assert leftovers(store) == []


def test_a_compressed_body_is_refused_unread(cdn, store):
    url = cdn.app.serve("/z.jpg", Answer(body=gzip.compress(JPEG), headers={"Content-Encoding": "gzip"}))
    assert refused(cdn, store, url) == "compressed body (gzip) instead of the file itself"


def test_a_download_slower_than_its_deadline_fails_and_leaves_nothing(cdn, store):
    url = cdn.app.serve("/slow.jpg", Answer(body=[JPEG[:10]] + [b"\x00"] * 60, length=False))
    with pytest.raises(FetchFailed, match="took longer than"):
        cdn.fetcher(deadline_seconds=0.2).fetch(url, max_bytes=MAX, store=store)
    assert leftovers(store) == []


def test_tls_is_verified_for_the_host_name_although_the_connection_goes_to_an_address(cdn, store):
    cdn.app.serve("/x.jpg", Answer())
    with pytest.raises(FetchFailed, match="SSLError"):  # *.fbcdn.net covers one label only
        cdn.fetcher().fetch("https://a.b.fbcdn.net/x.jpg", max_bytes=MAX, store=store)
    assert cdn.app.requests == []


def test_a_cdn_that_does_not_answer_is_a_transient_failure(tmp_path, store):
    from ntbcare.core.cdn import CdnFetcher
    from tests.servers import reserved_port

    with reserved_port() as sock:  # bound, not listening: connections are refused
        fetcher = CdnFetcher(resolve=lambda host, port: ["157.240.1.35"], loopback_port=sock.getsockname()[1])
        with pytest.raises(FetchFailed, match="ConnectionError"):
            fetcher.fetch(CDN + "/x.jpg", max_bytes=MAX, store=store)


def test_the_system_resolver_is_what_production_uses_and_tests_resolve_no_real_name(store):
    from ntbcare.core.cdn import CdnFetcher

    with pytest.raises(FetchFailed, match="cannot resolve scontent.xx.fbcdn.net"):
        CdnFetcher().fetch(CDN + "/x.jpg", max_bytes=MAX, store=store)
