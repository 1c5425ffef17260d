"""RQ on a real Redis: jobs carry ids only, Redis losing everything loses nothing, a killed worker loses nothing."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy import func, insert, select

from ingest.processing import process_batch
from ntbcare.app import create_app
from ntbcare.core.delivery_store import insert_delivery
from ntbcare.core.models import AuditEntry, Delivery, Ticket
from ntbcare.pipeline.classifier import cached_stamp, load_classifier
from ntbcare.pipeline.dispatch import INGEST_JOB, RQDispatcher
from ntbcare.pipeline.runtime import Runtime
from ntbcare.pipeline.sweeper import sweep
from tests.conftest import BASE_ENV, fixture_bytes, make_settings, redis_url, sign
from tests.test_cli_worker import descendants
from worker import ModelRefreshingWorker, run_worker

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
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
    with db.scope() as session:  # queued on SQLite's write lock with the workers' writes: never starved
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
    settings = make_settings(DATABASE_URL=redis_env["DATABASE_URL"], REDIS_URL=redis_env["REDIS_URL"])
    runtime = Runtime.build(settings, mode="web", db=db)
    assert isinstance(runtime.dispatcher, RQDispatcher)
    client = create_app(runtime=runtime).test_client()
    comment = fixture_bytes("feed__comment__add")
    payload = json.loads(comment)
    payload["entry"][0]["time"] += 1  # Facebook redelivers the same event in a batch of another time
    redelivered = json.dumps(payload).encode()
    for body in (comment, redelivered, fixture_bytes("messaging__message__text")):
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

    # Trained before the clock starts, not by the worker.
    load_classifier(redis_env["ROUTING_MODEL_PATH"], BASE_ENV["SECRET_KEY"])
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
        # the work-horse runs in a process group of its own: kill it by pid, or it would finish its job
        for pid in [*descendants(first.pid), first.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
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


def test_a_worker_takes_ingest_jobs_before_routing_jobs(redis_env, db):
    """README: routing is its own job on a queue taken after the ingest queue, so a burst becomes tickets at full
    speed. A routing job waiting before an ingest job still runs after it."""
    settings = make_settings(DATABASE_URL=redis_env["DATABASE_URL"], REDIS_URL=redis_env["REDIS_URL"])
    first, second = (insert_delivery(db, comment_body(n), source="webhook") for n in (1, 2))
    process_batch(db, [first], page_id=settings.fb_page_id, max_attempts=settings.max_delivery_attempts)
    with db.session() as session:
        [waiting] = session.scalars(select(Ticket.id)).all()
    rq = RQDispatcher(settings.redis_url)
    rq.enqueue_route([waiting])  # enqueued first...
    rq.enqueue_now([second])  # ...on the queue the web processes and sweepers feed

    run_worker(settings, burst=True)

    with db.session() as session:
        ingested_at = session.scalar(select(Delivery.processed_at).where(Delivery.id == second))
        routed_at = session.scalar(select(AuditEntry.at).where(AuditEntry.ticket_id == waiting,
                                                                 AuditEntry.from_status == "new"))
        statuses = session.scalars(select(Ticket.status)).all()
    assert ingested_at is not None and routed_at is not None
    assert ingested_at <= routed_at  # the later ingest job ran before the waiting routing job
    assert len(statuses) == 2 and "new" not in statuses  # both routed: the waiting one and the new one


@pytest.fixture
def queue_redis() -> Iterator[Redis]:
    conn = Redis.from_url(redis_url())
    conn.flushdb()
    yield conn
    conn.flushdb()


def test_a_running_worker_forks_its_jobs_with_the_retrained_model(queue_redis, tmp_path):
    """After `ntbcare routing train` replaces the model file, the worker reloads it in its parent before the next
    fork: the parent and the work-horse hold the new model, and no horse loads it itself."""
    # Trained once per run from the bundled seed.
    trained = load_classifier(BASE_ENV["ROUTING_MODEL_PATH"], BASE_ENV["SECRET_KEY"])
    path = str(tmp_path / "routing-model.pkl")
    shutil.copyfile(BASE_ENV["ROUTING_MODEL_PATH"], path)
    old = load_classifier(path, BASE_ENV["SECRET_KEY"])  # what the worker loaded at start
    old_stamp = cached_stamp(path)
    assert old_stamp is not None and old is not trained

    shutil.copyfile(BASE_ENV["ROUTING_MODEL_PATH"], path + ".new")  # a retrain writes a new file over the old one
    os.replace(path + ".new", path)
    new_stamp = old_stamp + 60 * 10**9
    os.utime(path, ns=(new_stamp, new_stamp))

    queue = Queue("ntbcare-test-model", connection=queue_redis, serializer=JSONSerializer)
    job = queue.enqueue("ntbcare.pipeline.classifier.cached_stamp", path)  # what the work-horse holds
    worker = ModelRefreshingWorker([queue], connection=queue_redis, serializer=JSONSerializer)
    worker.model_path, worker.secret_key = path, BASE_ENV["SECRET_KEY"]
    assert worker.work(burst=True)

    assert cached_stamp(path) == new_stamp  # the parent reloaded before forking
    assert load_classifier(path, BASE_ENV["SECRET_KEY"]) is not old
    assert job.get_status(refresh=True) == "finished"
    assert job.return_value(refresh=True) == new_stamp  # the horse inherited the new model
