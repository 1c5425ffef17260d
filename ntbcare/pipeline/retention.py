"""Retention of raw webhook bodies: they hold names, texts and ids exactly as Facebook sent them, so after
``RAW_RETENTION_DAYS`` (default 90) the body of a processed or failed delivery is emptied. The delivery row
(arrival, status, counts, its body's hash) and the normalized events parsed from it stay, so tickets,
statistics and duplicate detection are unaffected. Pending deliveries keep their body until processed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from ntbcare.core.db import Database
from ntbcare.core.models import Delivery, DeliveryStatus, utcnow

log = logging.getLogger(__name__)

BATCH = 1000  # one short transaction per batch: writers never wait long on the purge


def purge_raw_bodies(db: Database, retention_days: int, *, now: datetime | None = None, batch: int = BATCH) -> int:
    """Empty the bodies of deliveries older than ``retention_days`` that no longer need them; how many."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    purged = 0
    while True:
        with db.scope() as session:
            ids = list(session.scalars(
                select(Delivery.id)
                .where(Delivery.received_at < cutoff, Delivery.status != DeliveryStatus.PENDING,
                       func.length(Delivery.body) > 0)
                .order_by(Delivery.id).limit(batch)))
            if ids:
                session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(body=b""))
        purged += len(ids)
        if len(ids) < batch:
            break
    if purged:
        log.info("emptied %d raw webhook bodies older than %d days", purged, retention_days)
    return purged
