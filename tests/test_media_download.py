"""Attachments of complaint tickets kept in MEDIA_DIR, on SQLite and PostgreSQL: owed in the transaction that
stores the message, downloaded right after routing (or by the sweeper), named by SHA-256 with mode 0600;
a 500 retried with backoff, a 403 final, a crash mid-download recovered after the lease, chatter's photos never
fetched, and two sweepers racing fetch each file once. Facebook's CDN is the TLS stand-in of
tests/cdn_standin.py; everything else is the real pipeline."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from ntbcare.core.db import Database
from ntbcare.core.delivery_store import insert_delivery
from ntbcare.core.media_rules import MAX_ATTEMPTS
from ntbcare.core.models import MediaFile, MediaStatus, Ticket, TicketStatus, utcnow
from ntbcare.pipeline import media as media_downloads
from ntbcare.pipeline import ticket_ops
from ntbcare.pipeline.runtime import Runtime
from ntbcare.pipeline.sweeper import Sweeper
from tests.cdn_standin import JPEG, PNG, Answer, RunningCdn, cdn_standin, sha256
from tests.conftest import PAGE_ID, RecordingDispatcher, make_settings
from tests.servers import eventually

PSID = "6543210987654321"
COMPLAINT = "Listrik padam sejak pagi di Pagesangan Mataram, token sudah diisi tetap mati."


def messenger(mid: str, *urls: str, text: str | None = COMPLAINT, psid: str = PSID) -> bytes:
    message: dict = {"mid": mid, "attachments": [{"type": "image", "payload": {"url": url}} for url in urls]}
    if text:
        message["text"] = text
    at = int(time.time() * 1000)
    event = {"sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": at, "message": message}
    return json.dumps({"object": "page", "entry": [{"id": PAGE_ID, "time": at, "messaging": [event]}]}).encode()


@pytest.fixture
def cdn(tmp_path: Path) -> Iterator[RunningCdn]:
    with cdn_standin(tmp_path) as running:
        yield running


@pytest.fixture
def rt(database_url: str, db: Database, tmp_path: Path, cdn: RunningCdn) -> Iterator[Runtime]:
    settings = make_settings(DATABASE_URL=database_url, MEDIA_DIR=str(tmp_path / "media"),
                             MEDIA_MAX_BYTES=str(64 * 1024))
    runtime = Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher())
    runtime.pipeline.media_fetcher = cdn.fetcher()
    yield runtime


def receive(rt: Runtime, body: bytes, *, route: bool = True) -> Ticket:
    """Store a delivery as the webhook does and process it as a worker does; the ticket it opened or joined."""
    delivery_id = insert_delivery(rt.db, body, source="webhook")
    if route:
        rt.process([delivery_id])
    else:
        from ingest.processing import process_batch

        process_batch(rt.db, [delivery_id], page_id=PAGE_ID)
    with rt.db.session() as session:
        return session.scalars(select(Ticket).order_by(Ticket.id.desc())).first()  # type: ignore[return-value]


def rows(db: Database) -> list[MediaFile]:
    with db.session() as session:
        return list(session.scalars(select(MediaFile).order_by(MediaFile.id)))


def test_a_photo_message_becomes_a_private_file_named_by_its_sha256(rt, cdn):
    url = cdn.app.serve("/v/t1.15752-9/trafo.jpg", Answer(body=JPEG))
    ticket = receive(rt, messenger("m_photo_1", url + "?_nc_cat=1"))
    assert ticket.status in (TicketStatus.ROUTED, TicketStatus.REVIEW)  # a complaint: downloaded right away
    [media] = rows(rt.db)
    assert (media.status, media.ticket_id, media.kind, media.position) == (MediaStatus.STORED, ticket.id, "image", 0)
    assert (media.content_type, media.size_bytes, media.sha256) == ("image/jpeg", len(JPEG), sha256(JPEG))
    assert media.stored_path == f"{sha256(JPEG)[:2]}/{sha256(JPEG)}" and media.attempts == 1
    root = Path(rt.settings.media_dir)
    kept = root / media.stored_path
    assert kept.read_bytes() == JPEG
    assert kept.stat().st_mode & 0o777 == 0o600
    assert (root.stat().st_mode & 0o777, kept.parent.stat().st_mode & 0o777) == (0o700, 0o700)
    assert list((root / "tmp").iterdir()) == []  # no partial file left behind
    assert cdn.app.paths() == ["/v/t1.15752-9/trafo.jpg?_nc_cat=1"]


def test_the_same_bytes_twice_are_one_file_and_links_and_locations_owe_nothing(rt, cdn):
    a, b = cdn.app.serve("/a.jpg", Answer(body=JPEG)), cdn.app.serve("/b.jpg", Answer(body=JPEG))
    event = json.loads(messenger("m_two", a, b))
    event["entry"][0]["messaging"][0]["message"]["attachments"] += [
        {"type": "fallback", "title": "Berita", "url": "https://news.example.com/x"},
        {"type": "location", "payload": {"coordinates": {"lat": -8.58, "long": 116.1}}}]
    receive(rt, json.dumps(event).encode())
    first, second = rows(rt.db)
    assert (first.status, second.status) == (MediaStatus.STORED, MediaStatus.STORED)
    assert first.stored_path == second.stored_path and [first.position, second.position] == [0, 1]
    assert [p for p in Path(rt.settings.media_dir).rglob("*") if p.is_file()] == [
        Path(rt.settings.media_dir) / first.stored_path]


def test_a_redelivered_message_owes_nothing_new(rt, cdn):
    body = messenger("m_again", cdn.app.serve("/x.jpg", Answer()))
    receive(rt, body)
    receive(rt, body)
    assert len(rows(rt.db)) == 1 and cdn.app.paths() == ["/x.jpg"]


def test_a_server_error_is_retried_with_backoff_then_stored(rt, cdn):
    url = cdn.app.serve("/busy.jpg", Answer(status=500, content_type="text/plain", body=b"oops"), Answer(body=PNG,
                        content_type="image/png"))
    receive(rt, messenger("m_busy", url))
    [media] = rows(rt.db)
    assert (media.status, media.attempts) == (MediaStatus.PENDING, 1) and "HTTP 500" in (media.reason or "")
    assert media.next_attempt_at is not None and media.next_attempt_at > utcnow() + timedelta(seconds=10)
    assert rt.pipeline.download_media().tried == 0  # not due yet
    later = media.next_attempt_at + timedelta(seconds=1)
    report = media_downloads.download_due(rt.db, rt.settings, rt.pipeline.media_fetcher, now=later)
    assert report.stored == [media.id]
    [media] = rows(rt.db)
    assert (media.status, media.attempts, media.sha256, media.reason) == (MediaStatus.STORED, 2, sha256(PNG), None)
    assert cdn.app.paths() == ["/busy.jpg", "/busy.jpg"]


def test_transient_failures_end_failed_after_the_cap_and_retry_puts_them_back(rt, cdn):
    url = cdn.app.serve("/down.jpg", Answer(status=503, content_type="text/plain", body=b"down"))
    receive(rt, messenger("m_down", url))
    at = utcnow()
    for _ in range(MAX_ATTEMPTS):
        at += timedelta(hours=2)
        media_downloads.download_due(rt.db, rt.settings, rt.pipeline.media_fetcher, now=at)
    [media] = rows(rt.db)
    assert (media.status, media.attempts) == (MediaStatus.FAILED, MAX_ATTEMPTS)
    assert media.reason is not None and media.reason.startswith(f"gave up after {MAX_ATTEMPTS} attempts")
    assert len(cdn.app.paths()) == MAX_ATTEMPTS
    cdn.app.serve("/down.jpg", Answer())
    assert media_downloads.retry_media(rt.db, actor="operator:test") == [media.id]
    assert rt.pipeline.download_media().stored == [media.id]


def test_a_403_from_the_cdn_is_final(rt, cdn):
    url = cdn.app.serve("/old.jpg", Answer(status=403, content_type="text/plain", body=b"URL signature expired"))
    receive(rt, messenger("m_old", url))
    [media] = rows(rt.db)
    assert media.status == MediaStatus.REFUSED and "HTTP 403" in (media.reason or "")
    media_downloads.download_due(rt.db, rt.settings, rt.pipeline.media_fetcher, now=utcnow() + timedelta(days=3))
    assert cdn.app.paths() == ["/old.jpg"] and rows(rt.db)[0].status == MediaStatus.REFUSED


def test_an_over_size_or_foreign_attachment_is_refused_with_its_reason_and_nothing_kept(rt, cdn):
    big = cdn.app.serve("/big.jpg", Answer(body=[JPEG, b"\x00" * 70_000], length=False))
    receive(rt, messenger("m_big", big, "https://evil.example.com/x.jpg"))
    big_row, foreign = rows(rt.db)
    assert big_row.status == foreign.status == MediaStatus.REFUSED
    assert "larger than MEDIA_MAX_BYTES (65536 bytes)" in (big_row.reason or "")
    assert "is not Facebook's CDN" in (foreign.reason or "")
    assert [p for p in Path(rt.settings.media_dir).rglob("*") if p.is_file()] == []
    assert cdn.app.paths() == ["/big.jpg"]


def test_a_downloader_that_stopped_mid_download_is_taken_over_after_the_lease(rt, cdn):
    url = cdn.app.serve("/x.jpg", Answer())
    receive(rt, messenger("m_crash", url, text=None), route=False)  # a photo alone: waits, not yet classified
    with rt.db.scope() as session:
        session.execute(update(Ticket).values(status=TicketStatus.REVIEW))
    claimed = media_downloads._claim_one(rt.db, utcnow(), None)  # then the process died
    assert claimed is not None and rows(rt.db)[0].status == MediaStatus.DOWNLOADING
    assert rt.pipeline.download_media().tried == 0  # still someone else's within the lease
    later = utcnow() + media_downloads.LEASE + timedelta(seconds=1)
    report = media_downloads.download_due(rt.db, rt.settings, rt.pipeline.media_fetcher, now=later)
    assert report.stored == [claimed[0]] and rows(rt.db)[0].attempts == 2
    media_downloads._record(rt.db, media_downloads.MediaStore(rt.settings.media_dir), claimed[0], claimed[2], None,
                            media_downloads.FetchFailed("late"), utcnow(), media_downloads.MediaReport())
    assert rows(rt.db)[0].status == MediaStatus.STORED  # the old owner's late outcome is dropped


def test_photos_of_chatter_and_withdrawn_posts_are_never_fetched_until_an_operator_says_complaint(rt, cdn):
    url = cdn.app.serve("/meme.jpg", Answer())
    ticket = receive(rt, messenger("m_meme", url, text="Mantap min terima kasih"), route=False)
    assert rows(rt.db)[0].status == MediaStatus.PENDING and ticket.status == TicketStatus.NEW
    assert rt.pipeline.download_media().tried == 0  # not classified yet
    ticket_ops.not_complaint(rt.pipeline, ticket.number, actor="operator:ani")
    assert rt.pipeline.download_media().tried == 0 and cdn.app.requests == []
    with rt.db.scope() as session:
        session.execute(update(Ticket).values(status=TicketStatus.WITHDRAWN))
    assert rt.pipeline.download_media().tried == 0 and cdn.app.requests == []
    ticket_ops.reopen(rt.pipeline, ticket.number, actor="operator:ani")  # back to review: a complaint after all
    assert rt.pipeline.download_media().stored == [rows(rt.db)[0].id]


def test_two_sweepers_racing_download_each_file_once(rt, cdn, database_url):
    paths = [f"/race-{n}.jpg" for n in range(4)]
    bodies = [JPEG + bytes([n]) * 10 for n in range(4)]
    for path, body in zip(paths, bodies, strict=True):
        cdn.app.serve(path, Answer(body=body, delay=0.2))
    for n, path in enumerate(paths):
        receive(rt, messenger(f"m_race_{n}", "https://scontent.xx.fbcdn.net" + path, psid=f"65432109876543{n:02d}"),
                route=False)
    with rt.db.scope() as session:  # routed meanwhile, by a process whose download attempt never happened
        session.execute(update(Ticket).values(status=TicketStatus.ROUTED))
    sweepers = []
    for _ in range(2):
        other = Runtime(settings=rt.settings, db=Database(database_url), dispatcher=RecordingDispatcher())
        other.pipeline.media_fetcher = rt.pipeline.media_fetcher
        [task] = [t for t in other.pipeline.periodic_tasks() if t.__name__ == "download_media"]
        sweepers.append((other, Sweeper(other.db, lambda ids: None, interval=0.05, redispatch_after=60,
                                        tasks=[task]).start()))
    try:
        eventually(lambda: all(m.status == MediaStatus.STORED for m in rows(rt.db)), timeout=60,
                   what="every file stored")
    finally:
        for other, sweeper in sweepers:
            sweeper.stop()
            other.db.dispose()
    assert sorted(cdn.app.paths()) == sorted(paths)  # each fetched exactly once
    assert [m.attempts for m in rows(rt.db)] == [1, 1, 1, 1]
    assert [m.sha256 for m in rows(rt.db)] == [sha256(b) for b in bodies]
