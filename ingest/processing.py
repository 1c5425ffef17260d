"""Turn stored deliveries into events and tickets, exactly once in effect.

A delivery is marked ``done`` in the same transaction that writes its events and tickets, so a crash at
any point either leaves everything (done) or nothing (still pending, picked up again by the sweeper).
Attempts are counted in a separate, earlier commit so that a delivery that kills its worker every time
ends up ``failed`` with its error visible instead of looping forever.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from ingest.apply import ApplyResult, apply_batch
from ingest.envelope import parse_delivery
from ingest.errors import content_hash
from ingest.events import ParsedItem, UnsupportedItem
from ingest.grace import GraceWindow
from ingest.sanitize import scrub
from ingest.status_requests import StatusRequest
from ntbcare.core.db import Database
from ntbcare.core.models import Delivery, DeliveryStatus, utcnow

log = logging.getLogger(__name__)

# Errors a value of the payload causes, the same on every attempt: the item is unstorable, not the delivery.
UNSTORABLE_ERRORS = (DataError, UnicodeError)

# What the caller owes for applied items (replies to status questions, hiding changed comments), written in
# the transaction that marks their deliveries done, so a crash after that commit cannot lose what is owed.
# Returns the ids of the rows it wrote, to be sent after the commit.
Owe = Callable[[Session, ApplyResult], list[int]]


@dataclass
class BatchResult:
    """What one batch did; the worker logs it and dispatches routing for the opened tickets."""

    done: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    retry_later: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    opened_ticket_ids: list[int] = field(default_factory=list)
    status_requests: list[StatusRequest] = field(default_factory=list)
    # (ticket id, comment id): public comments of known tickets added or edited, to check for personal data.
    changed_comments: list[tuple[int, str]] = field(default_factory=list)
    # Replies the ``owe`` hook wrote in the same transactions, to be sent after the commit.
    reply_ids: list[int] = field(default_factory=list)


def retry_delay(attempt: int, *, base: float = 5.0, cap: float = 600.0) -> float:
    """Capped exponential backoff with full jitter, in seconds."""
    return random.uniform(0, min(cap, base * 2 ** max(0, attempt - 1)))


def count_attempt(db: Database, ids: list[int]) -> None:
    """Record that these pending deliveries are being tried once more (committed before the work)."""
    with db.scope() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.PENDING)
            .values(attempts=Delivery.attempts + 1)
        )


def process_batch(
    db: Database,
    delivery_ids: list[int],
    *,
    page_id: str = "",
    max_attempts: int = 5,
    chunk_size: int = 100,
    now: Callable[[], datetime] = utcnow,
    owe: Owe | None = None,
    grace_seconds: float = 0.0,
) -> BatchResult:
    """Process pending deliveries, ``chunk_size`` per transaction (short write locks for SQLite); ``owe``
    writes what the applied items owe inside that same transaction. ``now`` is the caller's clock, also the
    one that tells whether a ticket still waits ``grace_seconds`` for its words."""
    ids = sorted(set(delivery_ids))
    result = BatchResult()
    if not ids:
        return result
    count_attempt(db, ids)
    for start in range(0, len(ids), chunk_size):
        at = now()
        _process_chunk(db, ids[start : start + chunk_size], page_id, max_attempts, at, result, owe,
                       GraceWindow(grace_seconds, at))
    return result


def _apply(session: Session, deliveries: list[tuple[int, list[ParsedItem]]], page_id: str, owe: Owe | None,
           result: BatchResult, grace: GraceWindow | None = None) -> ApplyResult:
    """Apply items and owe what they cause, in the caller's savepoint: both happen or neither."""
    applied = apply_batch(session, deliveries, page_id=page_id, grace=grace)
    if owe is not None:
        result.reply_ids.extend(owe(session, applied))
    return applied


def _process_chunk(
    db: Database, ids: list[int], page_id: str, max_attempts: int, at: datetime, result: BatchResult,
    owe: Owe | None = None, grace: GraceWindow | None = None,
) -> None:
    with db.scope() as session:
        rows = session.scalars(
            select(Delivery)
            .where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.PENDING)
            .order_by(Delivery.id)
            .with_for_update(skip_locked=True)
        ).all()
        result.skipped.extend(sorted(set(ids) - {r.id for r in rows}))
        parsed: list[tuple[Delivery, list[ParsedItem]]] = []
        for delivery in rows:
            if delivery.attempts > max_attempts:
                _fail(delivery, at, delivery.error or "gave up: the worker stopped while processing it", result)
            else:
                parsed.append((delivery, _parse(delivery, page_id)))
        if not parsed:
            return
        owed_before = len(result.reply_ids)
        try:  # the fast path: the whole chunk at once
            with session.begin_nested():
                applied = _apply(session, [(d.id, items) for d, items in parsed], page_id, owe, result, grace)
        except Exception as exc:
            del result.reply_ids[owed_before:]  # rolled back with the savepoint
            log.info("chunk of %d deliveries failed (%s); isolating the bad one", len(parsed), exc)
            for delivery, items in parsed:
                _process_one(session, delivery, items, page_id, max_attempts, at, result, owe, grace)
            return
        for delivery, items in parsed:
            _mark_done(delivery, len(items), at, result)
        result.opened_ticket_ids.extend(applied.opened_ticket_ids)
        result.status_requests.extend(applied.status_requests)
        result.changed_comments.extend(applied.changed_comment_ids)


def _parse(delivery: Delivery, page_id: str) -> list[ParsedItem]:
    try:
        payload = json.loads(delivery.body)
    except (ValueError, RecursionError):
        payload = None  # bodies are checked at the door, replays are not: parse_delivery records it
    return parse_delivery(payload, page_id)


def _mark_done(delivery: Delivery, item_count: int, at: datetime, result: BatchResult) -> None:
    delivery.status = DeliveryStatus.DONE
    delivery.processed_at = at
    delivery.item_count = item_count
    delivery.error = None
    result.done.append(delivery.id)


def _process_one(
    session: Session, delivery: Delivery, items: list[ParsedItem], page_id: str, max_attempts: int, at: datetime,
    result: BatchResult, owe: Owe | None = None, grace: GraceWindow | None = None,
) -> None:
    error: Exception | None = None
    for _ in range(2):  # a second pass only after a concurrent writer inserted the same key first
        owed_before = len(result.reply_ids)
        try:
            try:
                with session.begin_nested():
                    applied = [_apply(session, [(delivery.id, items)], page_id, owe, result, grace)]
            except UNSTORABLE_ERRORS as exc:
                del result.reply_ids[owed_before:]
                log.info("delivery %s has an unstorable item (%s); applying its items one by one", delivery.id,
                         type(exc).__name__)
                applied = _apply_one_by_one(session, delivery.id, items, page_id, owe, result, grace)
            _mark_done(delivery, len(items), at, result)
            for part in applied:
                result.opened_ticket_ids.extend(part.opened_ticket_ids)
                result.status_requests.extend(part.status_requests)
                result.changed_comments.extend(part.changed_comment_ids)
            return
        except IntegrityError as exc:
            del result.reply_ids[owed_before:]
            error = exc
        except Exception as exc:  # a bug or a payload we cannot handle: kept visible, retried with backoff
            del result.reply_ids[owed_before:]
            error = exc
            break
    message = f"{type(error).__name__}: {error}"[:2000]
    log.warning("delivery %s failed (attempt %s): %s", delivery.id, delivery.attempts, message)
    if delivery.attempts >= max_attempts:
        _fail(delivery, at, message, result)
    else:
        delivery.error = message
        delivery.next_attempt_at = at + timedelta(seconds=retry_delay(delivery.attempts))
        delivery.dispatched_at = None  # the sweeper sends it again once next_attempt_at is due
        result.retry_later.append(delivery.id)


def _apply_one_by_one(session: Session, delivery_id: int, items: list[ParsedItem], page_id: str,
                      owe: Owe | None = None, result: BatchResult | None = None,
                      grace: GraceWindow | None = None) -> list[ApplyResult]:
    """Each item in its own savepoint; one the database refuses is recorded as malformed with the reason, so
    whatever the scrubbing at the edge missed costs that item, never the rest of the delivery."""
    applied: list[ApplyResult] = []
    sink = result if result is not None else BatchResult()
    for item in items:
        owed_before = len(sink.reply_ids)
        try:
            with session.begin_nested():
                applied.append(_apply(session, [(delivery_id, [item])], page_id, owe, sink, grace))
        except UNSTORABLE_ERRORS as exc:
            del sink.reply_ids[owed_before:]
            log.warning("delivery %s: item %s not stored: %s", delivery_id, item.dedup_key[:80], type(exc).__name__)
            with session.begin_nested():
                apply_batch(session, [(delivery_id, [unstorable(item, exc)])], page_id=page_id)
    return applied


def unstorable(item: ParsedItem, error: Exception) -> UnsupportedItem:
    """The record of an item the database refused; keyed on the item's key, so a redelivery adds nothing."""
    page_id = item.page_id if item.page_id and len(item.page_id) <= 64 else None
    return UnsupportedItem(
        source=item.source, shape=f"{item.source}:malformed",
        reason=f"malformed: the database refused a value of this item ({type(error).__name__})",
        dedup_key="unstorable:" + content_hash(item.dedup_key), page_id=page_id,
        raw=scrub(item.raw)[0],
    )


def _fail(delivery: Delivery, at: datetime, message: str, result: BatchResult) -> None:
    delivery.status = DeliveryStatus.FAILED
    delivery.error = message
    delivery.processed_at = at
    result.failed.append(delivery.id)
