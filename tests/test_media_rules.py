"""The pure rules behind kept attachments, without any network or database: which URLs are Facebook's CDN, which
addresses are public, which attachments are files, which types are kept and whether bytes match them, how a
file is named, how long a retry waits, and what a media link token proves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ntbcare.core.media_links import MEDIA_LINK_SECONDS, OPS, make_media_token, media_path, read_media_token
from ntbcare.core.media_rules import (
    ALLOWED_TYPES,
    MAX_ATTEMPTS,
    RETRY_CAP_SECONDS,
    content_type_of,
    download_name,
    downloadable,
    inline,
    looks_like,
    retry_delay,
    stored_name,
    type_refusal,
)
from ntbcare.core.security import CdnTarget, cdn_target, public_address, redact_tokens
from tests.cdn_standin import JPEG, PDF, PNG

SECRET = "media-link-test-secret-of-32-bytes-or-more"


@pytest.mark.parametrize(("url", "host"), [
    ("https://scontent.xx.fbcdn.net/v/t1.15752-9/img.jpg?_nc_cat=1", "scontent.xx.fbcdn.net"),
    ("https://scontent-sin6-1.xx.fbcdn.net/v/a.jpg", "scontent-sin6-1.xx.fbcdn.net"),
    ("https://video.xx.fbcdn.net/v/a.mp4", "video.xx.fbcdn.net"),
    ("https://cdn.fbsbx.com/v/t59/file.pdf", "cdn.fbsbx.com"),
    ("https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1", "lookaside.fbsbx.com"),
    ("HTTPS://SCONTENT.XX.FBCDN.NET:443/A.JPG", "scontent.xx.fbcdn.net"),
])
def test_facebooks_cdn_hosts_are_accepted(url, host):
    target = cdn_target(url)
    assert isinstance(target, CdnTarget) and target.host == host and target.path.startswith("/")


@pytest.mark.parametrize(("url", "reason"), [
    ("http://scontent.xx.fbcdn.net/a.jpg", "not https"),
    ("https://fbcdn.net/a.jpg", "is not Facebook's CDN"),
    ("https://fbcdn.net.evil.example/a.jpg", "is not Facebook's CDN"),
    ("https://evilfbcdn.net/a.jpg", "is not Facebook's CDN"),
    ("https://www.facebook.com/photo.php", "is not Facebook's CDN"),
    ("https://scontent.xx.fbcdn.net.:443/a.jpg", "is not Facebook's CDN"),
    ("https://xn--fbcdn-9ua.net/a.jpg", "is not Facebook's CDN"),
    ("https://scontent.xx.fbcdn.net:8443/a.jpg", "port 8443"),
    ("https://a:b@scontent.xx.fbcdn.net/a.jpg", "user name"),
    ("https://evil.example\\@scontent.xx.fbcdn.net/", "not a URL"),
    ("https://scontent.xx.fbcdn.net/a b.jpg", "not a URL"),
    ("https://[::1]/a.jpg", "is not Facebook's CDN"),
    ("https://127.0.0.1/a.jpg", "is not Facebook's CDN"),
    ("", "not a URL"),
    (None, "not a URL"),
])
def test_anything_else_is_refused_with_a_reason(url, reason):
    result = cdn_target(url)
    assert isinstance(result, str) and reason in result


@pytest.mark.parametrize(("address", "public"), [
    ("157.240.1.35", True), ("31.13.64.1", True), ("2a03:2880:f12f:83:face:b00c::25de", True),
    ("127.0.0.1", False), ("10.0.0.1", False), ("172.16.5.4", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.251", False),
    ("255.255.255.255", False), ("::1", False), ("fe80::1%eth0", False), ("fc00::1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:157.240.1.35", False), ("2002:7f00:1::", False), ("not-an-ip", False),
])
def test_only_public_addresses_may_be_connected_to(address, public):
    assert public_address(address) is public


def test_only_photos_videos_audio_and_files_are_downloaded():
    assert downloadable({"type": "image", "url": "https://x"}) == "https://x"
    assert downloadable({"type": "photo", "url": "https://x"}) == "https://x"
    for kind in ("fallback", "location", "template", "reel", "unknown"):
        assert downloadable({"type": kind, "url": "https://x"}) is None
    assert downloadable({"type": "image", "url": None}) is None and downloadable("image") is None


def test_kept_types_and_the_bytes_that_prove_them():
    assert type_refusal(content_type_of("IMAGE/JPEG; charset=binary")) is None
    assert set(ALLOWED_TYPES) == {"image/jpeg", "image/png", "image/gif", "image/webp", "video/mp4", "audio/mp4",
                                  "audio/mpeg", "audio/ogg", "audio/aac", "application/pdf"}
    assert "text/html" in (type_refusal("text/html") or "") and type_refusal("") is not None
    samples = {"image/jpeg": JPEG, "image/png": PNG, "image/gif": b"GIF89a\x01\x00", "application/pdf": PDF,
               "image/webp": b"RIFF\x10\x00\x00\x00WEBPVP8 ", "video/mp4": b"\x00\x00\x00\x18ftypmp42",
               "audio/mp4": b"\x00\x00\x00\x20ftypM4A ", "audio/mpeg": b"ID3\x04\x00", "audio/ogg": b"OggS\x00\x02",
               "audio/aac": b"\xff\xf1\x50\x80"}
    for kind, head in samples.items():
        assert looks_like(kind, head), kind
        assert not looks_like(kind, b"<!DOCTYPE html><html>"), kind
    assert not looks_like("image/png", JPEG) and not looks_like("text/html", b"<html>")


def test_files_are_named_by_content_and_served_by_type():
    digest = "ab" + "0" * 62
    assert stored_name(digest) == f"ab/{digest}"
    for bad in ("../etc/passwd", "AB" + "0" * 62, digest[:-1]):
        with pytest.raises(ValueError):
            stored_name(bad)
    assert inline("image/png") and not inline("application/pdf") and not inline("video/mp4")
    assert download_name("NTB-2026-000001", 7, "audio/mpeg") == "NTB-2026-000001-7.mp3"


def test_retries_back_off_to_a_cap():
    delays = [retry_delay(attempt) for attempt in range(1, 12)]
    assert 15 <= delays[0] <= 30 and all(d <= RETRY_CAP_SECONDS for d in delays)
    assert retry_delay(MAX_ATTEMPTS) >= 30 * 2 ** (MAX_ATTEMPTS - 1) * 0.5


def tampered(token: str) -> str:
    """The token with the first character of its signature changed (all six of its bits count, unlike the last
    character's, whose low bits are base64 padding)."""
    head, signature = token.rsplit(".", 1)
    return f"{head}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"


def test_a_media_token_proves_its_claims_until_it_expires():
    now = datetime.now(UTC)
    token = make_media_token(SECRET, 5, 9, "PLN", 2)
    claims = read_media_token(SECRET, token, now=now)
    assert claims is not None and (claims.media_id, claims.ticket_id, claims.audience, claims.link_version) == (
        5, 9, "PLN", 2)
    assert read_media_token(SECRET, token, now=now + timedelta(seconds=MEDIA_LINK_SECONDS + 1)) is None
    assert read_media_token(SECRET, token, now=now - timedelta(hours=1)) is None  # issued "in the future"
    assert read_media_token("another-secret-of-32-bytes-or-more-x", token, now=now) is None
    assert read_media_token(SECRET, tampered(token), now=now) is None
    assert read_media_token(SECRET, "", now=now) is None and read_media_token(SECRET, "x" * 2000, now=now) is None
    assert media_path(make_media_token(SECRET, 1, 1, OPS)).startswith("/media/")


def test_media_links_never_reach_a_log_line():
    token = make_media_token(SECRET, 1, 2, OPS)
    assert token not in redact_tokens(f'"GET {media_path(token)} HTTP/1.1" 200')
