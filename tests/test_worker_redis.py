"""RQ on a real Redis: jobs carry ids only, Redis losing everything loses nothing, a killed worker loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, insert, select

from ntbcare.app import create_app
from ntbcare.core.models import Delivery, Ticket
from ntbcare.pipeline.dispatch import INGEST_JOB, INGEST_QUEUE, RQDispatcher
from ntbcare.pipeline.runtime import Runtime
from ntbcare.pipeline.sweeper import sweep
from tests.conftest import BASE_ENV, fixture_bytes, make_settings, redis_url, sign

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    from redis import Redis

    url = redis_url()
    conn = Redis.from_url(url)
    conn.flushdb()
    env = {**BASE_ENV, "DATABASE_URL": database_url, "REDIS_URL": url, "LOG_LEVEL": "WARNING"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield env
    conn.flushdb()


def comment_body(n: int) -> bytes:
    value = {
        "from": {"id": f"73{n:014d}", "name": f"Warga {n}"}, "message": f"Lampu jalan mati di gang {n}",
        "post_id": "104000000000001_555000000000111", "comment_id": f"555000000000111_{800000000000 + n}",
        "parent_id": "104000000000001_555000000000111", "created_time": 1767225598 + n, "item": "comment",
        "verb": "add",
    }
    body = {"object": "page", "entry": [{"id": "104000000000001", "time": 1767225600,
                                          "changes": [{"field": "feed", "value": value}]}]}
    return json.dumps(body).encode()


def counts(db) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        pending = session.scalar(select(func.count()).where(Delivery.status == "pending"))
        done = session.scalar(select(func.count()).where(Delivery.status == "done"))
        tickets = session.scalar(select(func.count()).select_from(Ticket))
    return pending, done, tickets


def wait_for_enqueued(queue, n: int, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """Wait until ``n`` delivery ids sit in queued jobs (the dispatcher enqueues off the request path)."""
    deadline = time.monotonic() + timeout
    while (queued := sum(len(j.args[0]) for j in queue.get_jobs())) < n:
        assert time.monotonic() < deadline, f"only {queued} of {n} deliveries were enqueued"
        time.sleep(0.02)


def test_rq_jobs_carry_ids_only_and_become_tickets(redis_env, db):
    from worker import run_worker

    settings = make_settings(DATABASE_URL=redis_env["DATABASE_URL"], REDIS_URL=redis_env["REDIS_URL"])
    runtime = Runtime.build(settings, mode="web", db=db)
    assert isinstance(runtime.dispatcher, RQDispatcher)
    client = create_app(runtime=runtime).test_client()
    for name in ("feed__comment__add", "feed__comment__add", "messaging__message__text"):
        body = fixture_bytes(name)
        assert client.post("/webhook", data=body, headers={"X-Hub-Signature-256": sign(body)}).status_code == 200
    queue = runtime.dispatcher.queue
    wait_for_enqueued(queue, 3)
    jobs = queue.get_jobs()
    assert jobs and all(j.func_name == INGEST_JOB for j in jobs)
    assert all(isinstance(i, int) for j in jobs for i in j.args[0])
    raw = queue.connection.hget(f"rq:job:{jobs[0].id}", "data")
    assert raw is not None and b"pickle" not in raw and json.loads(__import__("zlib").decompress(raw))
    assert all(j.id.startswith("ingest-") for j in jobs)

    run_worker(settings, burst=True)
    assert counts(db) == (0, 3, 2)
    runtime.close()


def test_redis_flushed_while_deliveries_are_pending_the_sweeper_recovers_them(redis_env, db):
    from redis import Redis

    from worker import run_worker

    settings = make_settings(DATABASE_URL=redis_env["DATABASE_URL"], REDIS_URL=redis_env["REDIS_URL"])
    runtime = Runtime.build(settings, mode="web", db=db)
    client = create_app(runtime=runtime).test_client()
    for n in range(50):
        body = comment_body(n)
        assert client.post("/webhook", data=body, headers={"X-Hub-Signature-256": sign(body)}).status_code == 200
    wait_for_enqueued(runtime.dispatcher.queue, 50)
    Redis.from_url(redis_env["REDIS_URL"]).flushdb()  # Redis restarted without persistence
    run_worker(settings, burst=True)
    assert counts(db) == (50, 0, 0)  # nothing to do: the jobs are gone

    # the sweeper of any worker notices them once they are overdue, and re-enqueues them
    assert sweep(db, runtime.dispatcher.enqueue_now, redispatch_after=0) == 50
    run_worker(settings, burst=True)
    assert counts(db) == (0, 50, 50)
    runtime.close()


def test_redis_down_does_not_stop_acknowledgements(db, monkeypatch):
    settings = make_settings(DATABASE_URL=str(db.engine.url), REDIS_URL="redis://127.0.0.1:9/0")
    runtime = Runtime.build(settings, mode="web", db=db)
    client = create_app(runtime=runtime).test_client()
    body = fixture_bytes("feed__comment__add")
    assert client.post("/webhook", data=body, headers={"X-Hub-Signature-256": sign(body)}).status_code == 200
    assert counts(db)[0] == 1
    assert client.get("/readyz").status_code == 503
    runtime.close()


@pytest.mark.slow
def test_worker_killed_mid_burst_every_delivery_becomes_one_ticket(redis_env, db):
    """SIGKILL the worker (parent and work-horse) during a burst; a fresh worker finishes the job exactly once,
    within two minutes, with the default settings."""
    total = 3000
    with db.scope() as session:
        rows = [{"body": comment_body(n), "body_sha256": f"{n:064d}", "status": "pending", "attempts": 0,
                 "source": "webhook"} for n in range(total)]
        session.execute(insert(Delivery), rows)
    from ntbcare.pipeline.classifier import load_classifier

    load_classifier(redis_env["ROUTING_MODEL_PATH"])  # trained before the clock starts, not by the worker
    env = {**os.environ, **redis_env}
    cmd = [sys.executable, "-m", "ntbcare.cli", "worker"]
    first = subprocess.Popen(cmd, env=env, start_new_session=True, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while counts(db)[1] < 400 and time.monotonic() < deadline:
            time.sleep(0.05)
        done_before = counts(db)[1]
        assert 0 < done_before < total, "the kill must land in the middle of the burst"
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    killed_at = time.monotonic()
    second = subprocess.Popen(cmd, env=env, start_new_session=True, stderr=subprocess.DEVNULL)
    try:
        while counts(db)[0] > 0 and time.monotonic() - killed_at < 150:
            time.sleep(0.5)
        recovered_in = time.monotonic() - killed_at
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(timeout=30)
    pending, done, tickets = counts(db)
    assert (pending, done, tickets) == (0, total, total)
    assert recovered_in < 120
    with db.session() as session:
        origins = session.scalars(select(Ticket.origin_id)).all()
    assert len(set(origins)) == total


def test_queue_name_is_stable():
    assert INGEST_QUEUE == "ntbcare-ingest"
