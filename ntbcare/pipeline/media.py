"""Downloading the owed attachments of complaint tickets into MEDIA_DIR: never twice at once, never lost.

A pass claims one due ``pending`` row at a time (``downloading``, ``claimed_at``, one attempt counted) in a
short transaction locked past rows other downloaders hold, fetches it outside any transaction
(:class:`ntbcare.core.cdn.CdnFetcher`), keeps the file (:class:`ntbcare.core.media_store.MediaStore`) and
records the outcome only if its claim still holds. A row left ``downloading`` by a process that stopped is
due again after ``LEASE``. Any number of sweepers may run passes at once.

Only complaint tickets' files are fetched: a row waits while its ticket is ``new`` (not yet classified) and
stays waiting while the ticket is not a complaint or was withdrawn; an operator's reversal makes it due.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from ntbcare.core.cdn import CdnFetcher, Fetched, FetchFailed, FetchRefused
from ntbcare.core.db import Database
from ntbcare.core.lifecycle import audit
from ntbcare.core.media_rules import MAX_ATTEMPTS, retry_delay
from ntbcare.core.media_store import MediaStore
from ntbcare.core.models import MediaFile, MediaStatus, Ticket, TicketStatus, utcnow
from ntbcare.core.settings import Settings

log = logging.getLogger(__name__)

# Statuses whose tickets are complaints (or were merged into one): their files are fetched.
COMPLAINT_STATUSES = (TicketStatus.REVIEW, TicketStatus.ROUTED, TicketStatus.FORWARDED, TicketStatus.ANSWERED,
                      TicketStatus.CLOSED, TicketStatus.MERGED)
LEASE = timedelta(minutes=10)  # well past a download's own deadline (120 s)
PASS_SECONDS = 60.0  # a sweeper round goes on to its other duties after this


@dataclass
class MediaReport:
    """What one pass did, by row id."""

    stored: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)

    @property
    def tried(self) -> int:
        return len(self.stored) + len(self.refused) + len(self.retry) + len(self.failed)


def download_due(db: Database, settings: Settings, fetcher: CdnFetcher | None = None, *,
                 ticket_ids: list[int] | None = None, limit: int = 20, now: datetime | None = None,
                 pass_seconds: float = PASS_SECONDS) -> MediaReport:
    """Download up to ``limit`` due files (of these tickets, or any), one claim at a time."""
    fetcher = fetcher or CdnFetcher()
    store = MediaStore(settings.media_dir)
    report = MediaReport()
    started = time.monotonic()
    _recover_stale(db, now or utcnow())
    while report.tried < limit and time.monotonic() - started < pass_seconds:
        claimed = _claim_one(db, now or utcnow(), ticket_ids)
        if claimed is None:
            break
        media_id, url, claimed_at = claimed
        fetched, outcome = None, None
        try:
            fetched = fetcher.fetch(url, max_bytes=settings.media_max_bytes, store=store)
        except (FetchRefused, FetchFailed) as exc:
            outcome = exc
        except Exception as exc:  # a bug must not stop the pass; the row is retried and stays visible
            log.exception("download of attachment %s failed unexpectedly", media_id)
            outcome = FetchFailed(f"{type(exc).__name__}: {exc}")
        _record(db, store, media_id, claimed_at, fetched, outcome, now or utcnow(), report)
    if report.tried:
        log.info("attachments: %d stored, %d refused, %d retry later, %d failed", len(report.stored),
                 len(report.refused), len(report.retry), len(report.failed))
    return report


def _recover_stale(db: Database, now: datetime) -> None:
    """Rows still ``downloading`` after the lease belong to a downloader that stopped: due again now."""
    with db.scope() as session:
        session.execute(update(MediaFile).where(MediaFile.status == MediaStatus.DOWNLOADING,
                                                MediaFile.claimed_at < now - LEASE)
                        .values(status=MediaStatus.PENDING, next_attempt_at=None,
                                reason="the downloader stopped during the download"))


def _claim_one(db: Database, now: datetime, ticket_ids: list[int] | None) -> tuple[int, str, datetime] | None:
    """The oldest due row of a complaint ticket, taken for this pass (one attempt counted)."""
    query = (select(MediaFile).join(Ticket, Ticket.id == MediaFile.ticket_id)
             .where(MediaFile.status == MediaStatus.PENDING, Ticket.status.in_(COMPLAINT_STATUSES),
                    or_(MediaFile.next_attempt_at.is_(None), MediaFile.next_attempt_at <= now)))
    if ticket_ids is not None:
        query = query.where(MediaFile.ticket_id.in_(ticket_ids))
    with db.scope() as session:
        media = session.scalars(query.order_by(MediaFile.id).limit(1)
                                .with_for_update(skip_locked=True, of=MediaFile)).first()
        if media is None:
            return None
        media.status, media.claimed_at, media.attempts = MediaStatus.DOWNLOADING, now, media.attempts + 1
        return media.id, media.source_url, now


def _record(db: Database, store: MediaStore, media_id: int, claimed_at: datetime, fetched: Fetched | None,
            outcome: Exception | None, now: datetime, report: MediaReport) -> None:
    """Keep the file and write the outcome, only while the claim holds; a file nobody owns is removed."""
    relative = None
    try:
        if fetched is not None:
            relative = store.keep(fetched.temp_path, fetched.sha256)
    except OSError as exc:
        store.discard(fetched.temp_path if fetched else None)
        fetched, outcome = None, FetchFailed(f"cannot write to MEDIA_DIR: {exc}")
    with db.scope() as session:
        media = session.get(MediaFile, media_id, with_for_update=True)
        if media is None or media.status != MediaStatus.DOWNLOADING or media.claimed_at != claimed_at:
            log.warning("attachment %s was forgotten or taken over during the download; outcome dropped", media_id)
            if relative is not None:
                discard_unreferenced(session, store, [relative])
            return
        if fetched is not None and relative is not None:
            media.status, media.reason, media.stored_at, media.next_attempt_at = MediaStatus.STORED, None, now, None
            media.content_type, media.size_bytes, media.sha256 = fetched.content_type, fetched.size, fetched.sha256
            media.stored_path = relative
            report.stored.append(media_id)
        elif isinstance(outcome, FetchRefused):
            media.status, media.reason, media.next_attempt_at = MediaStatus.REFUSED, str(outcome)[:2000], None
            report.refused.append(media_id)
        elif media.attempts >= MAX_ATTEMPTS:
            media.status, media.next_attempt_at = MediaStatus.FAILED, None
            media.reason = f"gave up after {media.attempts} attempts: {outcome}"[:2000]
            report.failed.append(media_id)
        else:
            media.status, media.reason = MediaStatus.PENDING, f"attempt {media.attempts}: {outcome}"[:2000]
            media.next_attempt_at = now + timedelta(seconds=retry_delay(media.attempts))
            report.retry.append(media_id)


def discard_unreferenced(session: Session, store: MediaStore, paths: list[str]) -> int:
    """Delete kept files that no row refers to any more (files are shared by identical bytes)."""
    deleted = 0
    for path in dict.fromkeys(paths):
        still_used = session.scalar(select(MediaFile.id).where(MediaFile.stored_path == path).limit(1))
        if still_used is None and store.delete(path):
            deleted += 1
    return deleted


def retry_media(db: Database, ids: list[int] | None = None, *, actor: str = "operator") -> list[int]:
    """Failed downloads (by id also refused ones) back to pending with a fresh attempt budget."""
    statuses = (MediaStatus.FAILED, MediaStatus.REFUSED) if ids else (MediaStatus.FAILED,)
    with db.scope() as session:
        query = select(MediaFile).where(MediaFile.status.in_(statuses))
        if ids:
            query = query.where(MediaFile.id.in_(ids))
        rows = session.scalars(query.order_by(MediaFile.id).with_for_update()).all()
        for media in rows:
            audit(session, media.ticket, "media_retry", actor=actor, detail={"media": media.id, "was": media.status})
            media.status, media.attempts, media.reason, media.next_attempt_at = MediaStatus.PENDING, 0, None, None
        return [media.id for media in rows]


def media_to_dict(media: MediaFile, number: str, ticket_status: str) -> dict[str, Any]:
    """One row as ``ntbcare media list --json`` prints it."""
    return {"id": media.id, "ticket": number, "ticket_status": ticket_status, "message_id": media.message_id,
            "kind": media.kind, "status": media.status, "waiting_for_complaint":
                media.status == MediaStatus.PENDING and ticket_status not in COMPLAINT_STATUSES,
            "reason": media.reason, "content_type": media.content_type, "size": media.size_bytes,
            "sha256": media.sha256, "path": media.stored_path, "attempts": media.attempts,
            "next_attempt_at": media.next_attempt_at.isoformat() if media.next_attempt_at else None,
            "stored_at": media.stored_at.isoformat() if media.stored_at else None}


def list_media(session: Session, status: str | None = None, limit: int = 50) -> tuple[dict[str, int],
                                                                                         list[dict[str, Any]]]:
    """Counts per status and the newest rows (of one status)."""
    counts = dict(session.execute(select(MediaFile.status, func.count()).group_by(MediaFile.status)).all())
    query = (select(MediaFile, Ticket.number, Ticket.status).join(Ticket, Ticket.id == MediaFile.ticket_id)
             .order_by(MediaFile.id.desc()).limit(limit))
    if status:
        query = query.where(MediaFile.status == status)
    return counts, [media_to_dict(media, number, ticket_status) for media, number, ticket_status in
                    session.execute(query).all()]
