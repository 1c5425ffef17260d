"""`ntbcare worker` as a deployer runs it: `--burst` drains the queue and exits; SIGTERM (systemd stopping or
restarting the service) lets the job in flight finish and commit, then the worker exits cleanly."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy import func, insert, select

from ntbcare.core.db import Database
from ntbcare.core.delivery_store import insert_delivery
from ntbcare.core.models import Delivery, Ticket, utcnow
from ntbcare.pipeline.classifier import load_classifier
from ntbcare.pipeline.dispatch import ROUTE_QUEUE, RQDispatcher
from tests.conftest import BASE_ENV, fixture_bytes, redis_url

pytestmark = [pytest.mark.slow, pytest.mark.redis]

JOB_SIZE = 6000  # one job that takes seconds: long enough to be stopped in the middle of it


@pytest.fixture
def worker_env(database_url: str, db: Database, tmp_path: Path) -> Iterator[dict[str, str]]:
    """What a deployer's service file sets; the working directory has no .env to fill anything else in."""
    url = redis_url()
    redis = Redis.from_url(url)
    redis.flushdb()
    # Trained before the worker starts, not by it.
    load_classifier(BASE_ENV["ROUTING_MODEL_PATH"], BASE_ENV["SECRET_KEY"])
    yield {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **BASE_ENV, "DATABASE_URL": database_url,
           "REDIS_URL": url, "LOG_LEVEL": "WARNING", "INGEST_BATCH_SIZE": str(JOB_SIZE)}
    redis.flushdb()


def start_worker(env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "ntbcare.cli", "worker", *args], env=env, cwd=cwd, text=True,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def counts(db: Database) -> tuple[int, int, int]:
    """Pending deliveries, done deliveries, tickets (queued on SQLite's write lock like the worker's writes, so a
    reader polling during a burst is never starved)."""
    with db.scope() as session:
        pending = session.scalar(select(func.count()).where(Delivery.status == "pending")) or 0
        done = session.scalar(select(func.count()).where(Delivery.status == "done")) or 0
        tickets = session.scalar(select(func.count()).select_from(Ticket)) or 0
    return pending, done, tickets


def comment_bodies(total: int) -> list[dict[str, object]]:
    """Deliveries as the webhook stores them: pending, dispatched just now (so no sweeper dispatches them too)."""
    rows, now = [], utcnow()
    for n in range(total):
        value = {"from": {"id": f"76{n:014d}", "name": f"Warga {n}"}, "message": f"Drainase tersumbat di gang {n}",
                 "post_id": "104000000000001_555000000000111", "comment_id": f"555000000000111_{810000000000 + n}",
                 "parent_id": "104000000000001_555000000000111", "created_time": 1767225598 + n, "item": "comment",
                 "verb": "add"}
        body = json.dumps({"object": "page", "entry": [{"id": "104000000000001", "time": 1767225600,
                                                        "changes": [{"field": "feed", "value": value}]}]}).encode()
        rows.append({"body": body, "body_sha256": f"{n:064d}", "status": "pending", "attempts": 0,
                     "source": "webhook", "received_at": now, "dispatched_at": now})
    return rows


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (work-horse, sweeper, scheduler): what systemd signals with the worker."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found.extend(children)
        frontier = children
    return found


def test_burst_worker_turns_an_enqueued_delivery_into_a_ticket_and_exits(worker_env, db, tmp_path):
    delivery_id = insert_delivery(db, fixture_bytes("feed__comment__add"), source="webhook")
    RQDispatcher(worker_env["REDIS_URL"]).enqueue_now([delivery_id])

    proc = start_worker(worker_env, tmp_path, "--burst")
    try:
        _, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    assert proc.returncode == 0, stderr
    assert counts(db) == (0, 1, 1)
    with db.session() as session:
        [ticket] = session.scalars(select(Ticket)).all()
        assert ticket.text == "Jalan di Desa Sembalun rusak parah, mohon ditindaklanjuti"
        assert ticket.status != "new"  # the routing job it enqueued ran in the same burst


def stop_mid_job(env: dict[str, str], db: Database, cwd: Path, *, every_process: bool) -> tuple[int, str]:
    """Start a worker on one big job, SIGTERM it once part of the job is committed; its exit code and stderr."""
    with db.scope() as session:
        session.execute(insert(Delivery), comment_bodies(JOB_SIZE))
    with db.session() as session:
        ids = list(session.scalars(select(Delivery.id)))
    RQDispatcher(env["REDIS_URL"], batch_size=JOB_SIZE).enqueue_now(ids)

    proc = start_worker(env, cwd)
    try:
        deadline = time.monotonic() + 240
        while counts(db)[1] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        targets = [proc.pid, *descendants(proc.pid)] if every_process else [proc.pid]
        for pid in targets:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        done_at_signal = counts(db)[1]
        _, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert 0 < done_at_signal < JOB_SIZE, "the signal must reach the worker in the middle of its job"
    return proc.returncode, stderr


def test_sigterm_lets_the_worker_finish_its_job_and_exit_0(worker_env, db, tmp_path):
    """`kill PID` (or systemd with KillMode=mixed): the whole job is committed before the worker exits."""
    returncode, stderr = stop_mid_job(worker_env, db, tmp_path, every_process=False)

    assert returncode == 0, stderr
    assert counts(db) == (0, JOB_SIZE, JOB_SIZE), stderr
    # it took no new job after this one: the routing of these tickets waits in Redis for the next worker
    assert Queue(ROUTE_QUEUE, connection=Redis.from_url(worker_env["REDIS_URL"]),
                 serializer=JSONSerializer).count == 1


def test_sigterm_to_every_process_of_the_worker_still_finishes_its_job(worker_env, db, tmp_path):
    """systemd's default (KillMode=control-group) signals the work-horse and the sweeper too, not only the worker."""
    returncode, stderr = stop_mid_job(worker_env, db, tmp_path, every_process=True)

    assert returncode == 0, stderr
    assert counts(db) == (0, JOB_SIZE, JOB_SIZE), stderr


def test_a_worker_outlives_a_redis_restart_in_the_middle_of_its_job(worker_env, db, tmp_path):
    """Redis gone while a job runs and back empty after it (a restart without persistence): RQ's loop fails on
    its first call after the job and leaves; the worker registers again once Redis answers and goes on taking
    jobs, without a service manager to restart it."""
    from tests.fault_stack import PrivateRedis

    private = PrivateRedis(tmp_path)
    env = {**worker_env, "REDIS_URL": private.url}
    with db.scope() as session:
        session.execute(insert(Delivery), comment_bodies(JOB_SIZE))
    with db.session() as session:
        ids = list(session.scalars(select(Delivery.id)))
    RQDispatcher(private.url, batch_size=JOB_SIZE).enqueue_now(ids)
    proc = start_worker(env, tmp_path)
    try:
        deadline = time.monotonic() + 240
        while counts(db)[1] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        private.stop()  # down until the job is over: every key is gone, the worker's registration too
        assert 0 < counts(db)[1] < JOB_SIZE, "Redis must go away in the middle of the job"
        while counts(db)[1] < JOB_SIZE and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # the worker's calls after the job meet no Redis
        private.start()
        late = insert_delivery(db, fixture_bytes("feed__comment__add"), source="webhook")
        RQDispatcher(private.url).enqueue_now([late])  # a job queued after the restart is taken
        while time.monotonic() < deadline:
            with db.session() as session:
                if session.get(Delivery, late).status == "done":
                    break
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.2)
        assert proc.poll() is None, "the worker exited when Redis went away"
        assert counts(db) == (0, JOB_SIZE + 1, JOB_SIZE + 1)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        private.stop()
