"""`ntbcare deliveries`: the operator sees which webhook deliveries failed and puts them back in the queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, update

from ntbcare.cli import cli
from ntbcare.core.db import Database
from ntbcare.core.delivery_store import insert_delivery
from ntbcare.core.models import Delivery, DeliveryStatus, utcnow
from ntbcare.pipeline.sweeper import sweep
from tests.conftest import BASE_ENV, fixture_bytes


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return {**BASE_ENV, "DATABASE_URL": database_url, "REDIS_URL": ""}


@pytest.fixture
def deliveries(db: Database) -> Iterator[dict[str, list[int]]]:
    """Two failed deliveries (out of attempts, with their error), one done and one pending."""
    ids = [insert_delivery(db, fixture_bytes("feed__comment__add"), source="webhook") for _ in range(4)]
    failed, done, pending = ids[:2], ids[2:3], ids[3:]
    with db.scope() as session:
        session.execute(update(Delivery).where(Delivery.id.in_(failed)).values(
            status=DeliveryStatus.FAILED, attempts=5, error="boom", dispatched_at=utcnow()))
        session.execute(update(Delivery).where(Delivery.id.in_(done)).values(
            status=DeliveryStatus.DONE, attempts=1, processed_at=utcnow()))
    yield {"failed": failed, "done": done, "pending": pending}


def invoke(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def ok(env: dict[str, str], *args: str) -> Result:
    result = invoke(env, *args)
    assert result.exit_code == 0, result.output
    return result


def rows(db: Database) -> dict[int, tuple[str, int]]:
    with db.session() as session:
        return {d.id: (d.status, d.attempts) for d in session.scalars(select(Delivery))}


def listed(env: dict[str, str], *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ok(env, "deliveries", "list", "--json", *args).stdout)
    return data


def test_list_status_failed_shows_only_the_failed_ones_with_their_error(env, db, deliveries):
    data = listed(env, "--status", "failed")

    assert sorted(d["id"] for d in data["deliveries"]) == deliveries["failed"]
    assert {(d["status"], d["attempts"], d["error"]) for d in data["deliveries"]} == {("failed", 5, "boom")}
    assert data["counts"] == {"failed": 2, "done": 1, "pending": 1}  # the counts still cover every status
    assert sorted(d["id"] for d in listed(env)["deliveries"]) == sorted(sum(deliveries.values(), []))


def test_retry_all_failed_puts_every_failed_delivery_back_with_its_attempts_reset(env, db, deliveries):
    before = rows(db)

    result = ok(env, "deliveries", "retry", "--all-failed")

    assert "2 deliveries queued again" in result.stdout
    after = rows(db)
    assert {i: after[i] for i in deliveries["failed"]} == dict.fromkeys(deliveries["failed"], ("pending", 0))
    untouched = deliveries["done"] + deliveries["pending"]
    assert {i: after[i] for i in untouched} == {i: before[i] for i in untouched}
    assert listed(env, "--status", "failed")["deliveries"] == []
    # back in the queue: the next sweep hands them to the workers at once
    dispatched: list[int] = []
    sweep(db, dispatched.extend, redispatch_after=3600)
    assert sorted(dispatched) == deliveries["failed"]


def test_retry_by_id_puts_back_only_that_failed_delivery(env, db, deliveries):
    chosen, other = deliveries["failed"]
    [done] = deliveries["done"]

    result = ok(env, "deliveries", "retry", str(chosen), str(done))

    assert "1 delivery queued again" in result.stdout
    after = rows(db)
    assert after[chosen] == ("pending", 0)
    assert after[other] == ("failed", 5)
    assert after[done] == ("done", 1)  # a processed delivery is never run twice


def test_retry_without_ids_or_all_failed_says_what_to_give(env, db, deliveries):
    before = rows(db)
    result = invoke(env, "deliveries", "retry")
    assert result.exit_code == 1 and "--all-failed" in result.stderr
    assert rows(db) == before
