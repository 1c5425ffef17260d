"""Suggested duplicates for the review queue: tickets of the last 14 days at the same place whose wording is
close (at least 45 % of their words in common), shown beside each ticket with a merge button.

Each place's tickets of the window (its ``DUPLICATE_POOL`` newest, through ``(location_code, opened_at,
updated_at)``, revision 0010) are its *pool*. Reading a pool is most of a review page's work, and pools hardly
change between two page loads, so each process keeps them, and before using one asks the database for the
place's fingerprint (how many tickets since the window's start and their latest change, from the index
alone): any new, changed, merged or moved ticket there changes it, and the pool is read again. A pool is also
read again after ``POOL_MAX_AGE``, which bounds what a transaction that committed an older ``updated_at``
after a newer one could hide.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ntbcare.core.models import Ticket, TicketStatus

DUPLICATE_DAYS = 14
DUPLICATE_SIMILARITY = 0.45
# The newest tickets of the window compared per place: a bound per place, not across them, so a busy place
# cannot push a quieter place's older match out of the window.
DUPLICATE_POOL = 2000
POOL_MAX_AGE = 60.0  # seconds
POOLS_KEPT = 512
WORD = re.compile(r"[0-9a-z]{3,}")


@lru_cache(maxsize=4096)
def _words_of(text: str) -> frozenset[str]:
    return frozenset(WORD.findall(text.lower()))


def words(text: str | None) -> frozenset[str]:
    """The words compared; remembered per text (4,096: about two weeks of the province's complaints)."""
    return _words_of(text or "")


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Share of words in common (Jaccard); 0 when either side has none."""
    common = len(a & b)
    return common / (len(a) + len(b) - common) if common else 0.0


@dataclass(frozen=True)
class Duplicate:
    """A ticket suggested as the same problem: what the queue shows of it."""

    number: str
    status: str
    text: str


class Pooled(NamedTuple):
    id: int
    number: str
    status: str
    text: str
    opened_at: datetime
    words: frozenset[str]


@dataclass(frozen=True)
class _Pool:
    start: datetime
    fingerprint: tuple[Any, ...]
    read_at: float
    tickets: list[Pooled]


_pools: dict[tuple[str, str], _Pool] = {}
_lock = threading.Lock()


def forget_pools() -> None:
    """Drop every kept pool (the next review page reads them all again: what a benchmark's cold case measures)."""
    with _lock:
        _pools.clear()


def window_start(now: datetime) -> datetime:
    """14 days back, to the hour: a pool stays usable for an hour while the window slides (the exact 14 days
    are applied to what it holds)."""
    return (now - timedelta(days=DUPLICATE_DAYS)).replace(minute=0, second=0, microsecond=0)


def _fingerprints(session: Session, places: set[str], start: datetime) -> dict[str, tuple[Any, ...]]:
    rows = session.execute(select(Ticket.location_code, func.count(), func.max(Ticket.updated_at))
                           .where(Ticket.location_code.in_(places), Ticket.opened_at >= start)
                           .group_by(Ticket.location_code))
    return {str(row[0]): (row[1], row[2]) for row in rows}


def _read_pool(session: Session, place: str, start: datetime) -> list[Pooled]:
    rows = session.connection().execute(  # plain rows: no ORM loading for thousands of them
        select(Ticket.id, Ticket.number, Ticket.status, Ticket.text, Ticket.opened_at)
        .where(Ticket.location_code == place, Ticket.opened_at >= start, Ticket.status != TicketStatus.MERGED)
        .order_by(Ticket.opened_at.desc()).limit(DUPLICATE_POOL))
    return [Pooled(row[0], row[1], row[2], row[3] or "", row[4], words(row[3])) for row in rows]


def pools(session: Session, places: set[str], now: datetime) -> dict[str, list[Pooled]]:
    """Each place's pool, read again only where the fingerprint changed (or it is old)."""
    start = window_start(now)
    database = str(session.get_bind().engine.url)
    current = _fingerprints(session, places, start)
    found: dict[str, list[Pooled]] = {}
    for place in places:
        fingerprint = current.get(place, (0, None))
        with _lock:
            kept = _pools.get((database, place))
        fresh = time.monotonic()
        stale = kept is None or (kept.start, kept.fingerprint) != (start, fingerprint)
        if kept is None or stale or fresh - kept.read_at > POOL_MAX_AGE:
            kept = _Pool(start, fingerprint, fresh, _read_pool(session, place, start))
            with _lock:
                _pools[(database, place)] = kept
                while len(_pools) > POOLS_KEPT:
                    del _pools[next(iter(_pools))]
        found[place] = kept.tickets
    return found


def _closest(own: frozenset[str], own_id: int, pool: list[Pooled], since: datetime,
             limit: int) -> list[tuple[Duplicate, float]]:
    """The pool's tickets of the window at least DUPLICATE_SIMILARITY alike, closest first (newer first among
    equals). ``common / (|a| + |b| - common) >= t`` is tested as ``common * (1 + t) >= t * (|a| + |b|)``:
    without a division or a call per pair, since a review page compares thousands of pairs."""
    if not own:
        return []
    threshold, size = DUPLICATE_SIMILARITY, len(own)
    close = []
    for other in pool:
        common = len(own & other.words)
        if (common and common * (1 + threshold) >= threshold * (size + len(other.words)) and other.id != own_id
                and other.opened_at >= since):
            close.append((other, common / (size + len(other.words) - common)))
    close.sort(key=lambda pair: -pair[1])
    return [(Duplicate(other.number, other.status, other.text), score) for other, score in close[:limit]]


def suggested_duplicates(session: Session, tickets: Sequence[Ticket], now: datetime,
                         limit: int = 3) -> dict[int, list[tuple[Duplicate, float]]]:
    """For each ticket, its closest tickets of the last 14 days at the same place."""
    found: dict[int, list[tuple[Duplicate, float]]] = {t.id: [] for t in tickets}
    places = {t.location_code for t in tickets if t.location_code}
    if not places:
        return found
    by_place = pools(session, places, now)
    since = now - timedelta(days=DUPLICATE_DAYS)
    for ticket in tickets:
        if ticket.location_code:
            found[ticket.id] = _closest(words(ticket.text), ticket.id, by_place[ticket.location_code], since, limit)
    return found
