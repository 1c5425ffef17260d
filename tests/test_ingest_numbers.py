"""Reference numbers: ``NTB-<year>-<6 digits>``, sequential per year of the WITA calendar (UTC+8).

The year is the one in Lombok when the delivery reached us (never the payload's own clock, which may be old
or zero), so a comment received at 31 Dec 16:30 UTC, already 1 Jan 00:30 WITA, opens the first ticket of the
new year.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from ntbcare.core.db import Database
from ntbcare.core.lifecycle import ensure_ticket_counter, reserve_ticket_numbers
from ntbcare.core.models import Delivery, DeliveryStatus, Ticket
from tests.conftest import drain, fixture_bytes

LAST_2025_MINUTE_WITA = datetime(2025, 12, 31, 15, 59, 59, tzinfo=UTC)  # 23:59:59 WITA, 31 Dec 2025
FIRST_2026_HOUR_WITA = datetime(2025, 12, 31, 16, 30, tzinfo=UTC)  # 00:30 WITA, 1 Jan 2026; still 2025 in UTC


def comment_change(n: int, written_at: datetime) -> dict[str, Any]:
    """A citizen's top-level comment number ``n`` (each opens its own ticket), written at ``written_at``."""
    value = json.loads(fixture_bytes("feed__comment__add"))["entry"][0]["changes"][0]["value"]
    value["comment_id"] = f"555000000000111_{880000000000 + n}"
    value["message"] = f"Jalan rusak di dusun nomor {n}, mohon diperbaiki"
    value["created_time"] = int(written_at.timestamp())
    return {"field": "feed", "value": value}


def body(*changes: dict[str, Any], received_at: datetime) -> dict[str, Any]:
    return {"object": "page", "entry": [{"id": "104000000000001", "time": int(received_at.timestamp()),
                                         "changes": list(changes)}]}


def receive(post, runtime, payload: dict[str, Any], received_at: datetime) -> None:  # type: ignore[no-untyped-def]
    """Post a delivery and make it one that reached us at ``received_at``, then process it."""
    assert post(payload).status_code == 200
    with runtime.db.scope() as session:
        session.execute(update(Delivery).where(Delivery.status == DeliveryStatus.PENDING)
                        .values(received_at=received_at))
    drain(runtime)


def numbers_by_text(runtime) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with runtime.db.session() as session:
        return {t.text.split(" nomor ")[1].split(",")[0]: t.number for t in session.scalars(select(Ticket))}


def test_the_first_ticket_of_a_new_wita_year_is_number_000001(post, runtime):
    for n, written_at in enumerate([datetime(2025, 12, 31, 9, tzinfo=UTC), LAST_2025_MINUTE_WITA,
                                    FIRST_2026_HOUR_WITA, datetime(2026, 1, 1, 2, tzinfo=UTC)], start=1):
        receive(post, runtime, body(comment_change(n, written_at), received_at=written_at), written_at)
    assert numbers_by_text(runtime) == {
        "1": "NTB-2025-000001",
        "2": "NTB-2025-000002",
        "3": "NTB-2026-000001",  # 31 Dec 16:30 UTC is 1 Jan in WITA
        "4": "NTB-2026-000002",
    }


def test_one_delivery_numbers_its_tickets_in_order_in_the_year_it_reached_us(post, runtime):
    changes = [comment_change(1, LAST_2025_MINUTE_WITA), comment_change(2, FIRST_2026_HOUR_WITA),
               comment_change(3, LAST_2025_MINUTE_WITA), comment_change(4, FIRST_2026_HOUR_WITA)]
    receive(post, runtime, body(*changes, received_at=FIRST_2026_HOUR_WITA), FIRST_2026_HOUR_WITA)
    assert numbers_by_text(runtime) == {
        "1": "NTB-2026-000001", "2": "NTB-2026-000002", "3": "NTB-2026-000003", "4": "NTB-2026-000004"}


def test_the_year_is_when_it_reached_us_not_the_payloads_own_timestamp(post, runtime):
    new_year = datetime(2026, 1, 1, 3, tzinfo=UTC)
    receive(post, runtime, body(comment_change(1, new_year), received_at=new_year), new_year)
    # written before midnight WITA, delivered (retried) after it; and one with an ancient timestamp
    receive(post, runtime, body(comment_change(2, LAST_2025_MINUTE_WITA), received_at=new_year), new_year)
    receive(post, runtime, body(comment_change(3, datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)),
                                received_at=new_year), new_year)
    assert numbers_by_text(runtime) == {"1": "NTB-2026-000001", "2": "NTB-2026-000002", "3": "NTB-2026-000003"}


@pytest.mark.postgres
def test_concurrent_batches_never_wait_on_each_other_for_numbers_and_never_share_one(pg_db: Database) -> None:
    """PostgreSQL: an ingest batch takes its numbers in a transaction of its own, so a second worker's batch
    is not held up for the whole of the first one's transaction; a batch that rolls back skips its numbers."""
    first = pg_db.session()
    first.begin()
    ensure_ticket_counter(first, 2026, apart=True)
    taken_first = reserve_ticket_numbers(first, 2026, 3, apart=True)  # the first batch goes on working...
    taken_second: list[str] = []

    def second_batch() -> None:
        with pg_db.scope() as session:
            taken_second.extend(reserve_ticket_numbers(session, 2026, 2, apart=True))

    worker = threading.Thread(target=second_batch)
    worker.start()
    worker.join(10)
    try:
        assert not worker.is_alive(), "the second batch waited for the first one's transaction"
    finally:
        first.rollback()  # ...and fails: its numbers are not given again
        first.close()
        worker.join(10)
    assert taken_first == ["NTB-2026-000001", "NTB-2026-000002", "NTB-2026-000003"]
    assert taken_second == ["NTB-2026-000004", "NTB-2026-000005"]
    with pg_db.scope() as session:
        assert reserve_ticket_numbers(session, 2026, 1, apart=True) == ["NTB-2026-000006"]
