"""The sweeper's operations duties: the webhook watchdog every round, the retention purge once an hour."""

from __future__ import annotations

import time
from collections.abc import Callable

from ntbcare.core.db import Database
from ntbcare.core.settings import Settings
from ntbcare.pipeline.retention import purge_raw_bodies
from ntbcare.pipeline.watchdog import owe_silence_alert

PURGE_EVERY_SECONDS = 3600.0


def housekeeping_tasks(db: Database, settings: Settings,
                       send_mails: Callable[[list[int]], object]) -> list[Callable[[], None]]:
    """Tasks for :class:`ntbcare.pipeline.sweeper.Sweeper`; ``send_mails`` sends owed e-mails by id."""
    last_purge: list[float] = []

    def purge_old_raw_bodies() -> None:
        if last_purge and time.monotonic() - last_purge[0] < PURGE_EVERY_SECONDS:
            return
        purge_raw_bodies(db, settings.raw_retention_days)
        last_purge[:] = [time.monotonic()]

    def watch_webhooks() -> None:
        mail_id = owe_silence_alert(db, settings)
        if mail_id is not None:
            send_mails([mail_id])

    return [watch_webhooks, purge_old_raw_bodies]
