"""What of a citizen's attachment is kept, as pure rules: which attachments are files to download, which
content types are accepted (and whether the bytes look like the type claimed), how a kept file is named and
served, and how long a failed download waits before the next try.

No I/O here: the downloader (:mod:`ntbcare.core.cdn`, :mod:`ntbcare.pipeline.media`) and the web view
(:mod:`ntbcare.web.media`) apply these rules, and the rules are tested on their own.
"""

from __future__ import annotations

import random
from typing import Any

# Attachment types (``attachments[].type``) that are files on Facebook's CDN: Messenger's image, video, audio
# and file; the feed's photo and video. Shared links, templates, locations and stickers-as-posts are not.
DOWNLOADABLE_TYPES = frozenset({"image", "photo", "video", "audio", "file"})

# The content types kept, with the file extension a download gets.
ALLOWED_TYPES = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "audio/mp4": "m4a",
    "audio/mpeg": "mp3",
    "audio/ogg": "ogg",
    "audio/aac": "aac",
    "application/pdf": "pdf",
}
SNIFF_BYTES = 16

MAX_ATTEMPTS = 5
RETRY_BASE_SECONDS = 30.0
RETRY_CAP_SECONDS = 3600.0


def downloadable(attachment: Any) -> str | None:
    """The URL to download for an attachment record (``{"type", "url", ...}``), or None when it is no file."""
    if not isinstance(attachment, dict) or attachment.get("type") not in DOWNLOADABLE_TYPES:
        return None
    url = attachment.get("url")
    return url if isinstance(url, str) and url else None


def content_type_of(header: str | None) -> str:
    """The media type of a Content-Type header, lowercased, without parameters (``image/jpeg``)."""
    return (header or "").split(";", 1)[0].strip().lower()


def type_refusal(content_type: str) -> str | None:
    """Why a content type is refused, or None when it is kept."""
    if content_type in ALLOWED_TYPES:
        return None
    return f"content type {content_type[:60] or '(none)'!r} is not a photo, video, audio or PDF"


def looks_like(content_type: str, head: bytes) -> bool:
    """Whether the first bytes of a body are those of ``content_type``: a CDN error page or a renamed program
    claiming to be a photo is refused, so a kept file is what its type says."""
    if content_type == "image/jpeg":
        return head.startswith(b"\xff\xd8\xff")
    if content_type == "image/png":
        return head.startswith(b"\x89PNG\r\n\x1a\n")
    if content_type == "image/gif":
        return head[:6] in (b"GIF87a", b"GIF89a")
    if content_type == "image/webp":
        return head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    if content_type in ("video/mp4", "audio/mp4"):
        return head[4:8] == b"ftyp"
    if content_type == "audio/mpeg":
        return head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)
    if content_type == "audio/ogg":
        return head.startswith(b"OggS")
    if content_type == "audio/aac":
        return head.startswith(b"ADIF") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0)
    if content_type == "application/pdf":
        return head.startswith(b"%PDF-")
    return False


def stored_name(sha256: str) -> str:
    """Where a file lives under MEDIA_DIR, by its content: ``ab/abcdef…`` (one file for identical bytes)."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError("not a SHA-256 hex digest")
    return f"{sha256[:2]}/{sha256}"


def inline(content_type: str) -> bool:
    """Images open in the browser; everything else is a download (``Content-Disposition: attachment``)."""
    return content_type.startswith("image/")


def download_name(number: str, media_id: int, content_type: str) -> str:
    """The file name a browser offers: the ticket number, the attachment id and the type's extension."""
    return f"{number}-{media_id}.{ALLOWED_TYPES.get(content_type, 'bin')}"


def retry_delay(attempt: int) -> float:
    """Seconds before the next try of a transiently failed download: capped exponential backoff, jittered."""
    delay = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempt - 1))
    return delay * random.uniform(0.5, 1.0)
