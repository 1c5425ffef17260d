"""Surge: a stored backlog of deliveries drained to routed, acknowledged tickets by real `ntbcare worker`s on
PostgreSQL, against the same count of no-op RQ jobs run by the same number of forking RQ workers.

The backlog is a realistic mix (60 % comments on the page's posts, 15 % visitors' posts on the timeline, 25 %
Messenger messages, every one from its own citizen) with 5 % duplicates: the same event redelivered in another
body, as Facebook does after a timeout. Expected: one ticket per distinct event, each routed (no ticket left
``new``) with its acknowledgement owed (an ``ack`` reply row), every delivery ``done``, none twice.

Per worker count: deliveries/s (stored backlog to the last ticket routed and acknowledged), the no-op
baseline's jobs/s and the ratio, and each worker's peak memory (proportional set size, sampled every 0.25 s, of
the worker with its forked children: work-horse and RQ scheduler; its spawned sweeper apart; the largest single
process too). A run that makes no progress for 120 s is stopped and reported as a mismatch.

Run: .venv/bin/python bench/surge.py [--deliveries 100000] [--workers 1,2,4] [--noop-jobs N]
Floors (issue 11): under 5 minutes, nothing lost or duplicated, >= 5x the no-op baseline, <= 250 MB per worker.
Needs PostgreSQL and Redis on loopback (db 9 by default, flushed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import ENV, prepare_database  # noqa: E402

PAGE = "104000000000001"
TEXTS = (
    "Jalan rusak parah di Desa {place}, sudah tiga bulan belum diperbaiki pak",
    "Lampu jalan mati di depan pasar {place}, tolong segera diperbaiki",
    "Air PDAM tidak mengalir sudah seminggu di {place}",
    "Sampah menumpuk di pinggir jalan {place}, bau sekali",
    "Puskesmas {place} tutup padahal jam pelayanan, warga kecewa",
    "Ada pungli saat mengurus KTP di kantor camat {place}",
    "Jembatan di {place} retak dan berbahaya untuk anak sekolah",
    "Listrik padam terus di {place} setiap malam",
)
PLACES = ("Sembalun", "Pringgabaya", "Praya", "Gerung", "Tanjung", "Sumbawa Besar", "Dompu", "Woha", "Ampenan")


def _text(rng: random.Random, n: int) -> str:
    return rng.choice(TEXTS).format(place=rng.choice(PLACES)) + f" (laporan {n})"


def event(n: int, rng: random.Random) -> tuple[str, dict[str, object]]:
    """Delivery ``n``'s kind and its one event (an entry's change or messaging item)."""
    roll = n % 20
    when = 1767225600 + n
    if roll < 12:
        return "comment", {"field": "feed", "value": {
            "from": {"id": f"7{n:015d}", "name": f"Warga {n}"}, "message": _text(rng, n),
            "post_id": f"{PAGE}_555000000000111", "comment_id": f"555000000000111_{900000000 + n}",
            "parent_id": f"{PAGE}_555000000000111", "created_time": when, "item": "comment", "verb": "add"}}
    if roll < 15:
        return "post", {"field": "feed", "value": {
            "from": {"id": f"7{n:015d}", "name": f"Warga {n}"}, "message": _text(rng, n),
            "post_id": f"{PAGE}_{800000000000 + n}", "created_time": when, "item": "status", "verb": "add",
            "published": 1}}
    return "messenger", {"sender": {"id": f"6{n:015d}"}, "recipient": {"id": PAGE}, "timestamp": when * 1000,
                         "message": {"mid": f"m_surge_{n}", "text": _text(rng, n)}}


def body_for(kind: str, item: dict[str, object], entry_time: int) -> bytes:
    key = "messaging" if kind == "messenger" else "changes"
    return json.dumps({"object": "page", "entry": [{"id": PAGE, "time": entry_time, key: [item]}]},
                      separators=(",", ":")).encode()


def backlog(count: int, seed: int = 11) -> tuple[list[bytes], dict[str, int]]:
    """``count`` bodies: 95 % distinct events, 5 % redeliveries of earlier ones (different bodies)."""
    rng = random.Random(seed)
    distinct = count - count // 20
    bodies, kinds, events = [], {"comment": 0, "post": 0, "messenger": 0, "duplicate": 0}, []
    for n in range(distinct):
        kind, item = event(n, rng)
        events.append((kind, item))
        kinds[kind] += 1
        bodies.append(body_for(kind, item, 1767225600 + n))
    for k in range(count - distinct):
        kind, item = events[rng.randrange(distinct)]
        kinds["duplicate"] += 1
        bodies.append(body_for(kind, item, 1767300000 + k))  # another entry time: another body, same event
    rng.shuffle(bodies)
    return bodies, kinds


def _pss(pid: int) -> int:
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        return next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:"))
    except (OSError, StopIteration):
        return 0


def worker_memory(pid: int) -> tuple[int, int, int]:
    """Proportional set size (kB) of an `ntbcare worker`: the worker with its work-horse, its sweeper (a
    spawned process of its own), and the largest single process among them."""
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return 0, 0, 0
    own, horse, sweeper = _pss(pid), 0, 0
    for child in children:
        try:
            spawned = b"multiprocessing" in Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if spawned:
            sweeper += _pss(child)
        else:
            horse += _pss(child)
    return own + horse, sweeper, max(own, horse, sweeper)


class MemorySampler(threading.Thread):
    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids, self.peak_worker, self.peak_sweeper, self.peak_process = pids, 0, 0, 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.25):
            for pid in self.pids:
                worker, sweeper, largest = worker_memory(pid)
                self.peak_worker = max(self.peak_worker, worker)
                self.peak_sweeper = max(self.peak_sweeper, sweeper)
                self.peak_process = max(self.peak_process, largest)


def drain(env: dict[str, str], database_url: str, bodies: list[bytes], workers: int,
          timeout: float) -> dict[str, object]:
    from redis import Redis
    from sqlalchemy import func, insert, select, text

    from ntbcare.core.db import Database
    from ntbcare.core.models import Delivery, Reply, Ticket
    from ntbcare.pipeline.dispatch import RQDispatcher
    from ntbcare.pipeline.sweeper import sweep

    Redis.from_url(env["REDIS_URL"]).flushdb()
    db = Database(database_url)
    with db.scope() as session:
        for table in ("replies", "events", "ticket_messages", "audit_entries", "tickets", "citizens", "deliveries"):
            session.execute(text(f"DELETE FROM {table}"))
    for start in range(0, len(bodies), 5000):
        with db.scope() as session:
            session.execute(insert(Delivery), [
                {"body": body, "body_sha256": hashlib.sha256(body).hexdigest(), "status": "pending",
                 "attempts": 0, "source": "surge"} for body in bodies[start : start + 5000]])
    started = time.perf_counter()
    sweep(db, RQDispatcher(env["REDIS_URL"]).enqueue_now, redispatch_after=0)
    procs = [subprocess.Popen([sys.executable, "-m", "ntbcare.cli", "worker", "--name", f"surge-{workers}-{i}"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True) for i in range(workers)]
    sampler = MemorySampler([p.pid for p in procs])
    sampler.start()
    stored_s = None
    progress, progressed_at = (-1, -1), time.perf_counter()
    try:
        while time.perf_counter() - started < timeout:
            with db.session() as session:
                pending = session.scalar(select(func.count()).where(Delivery.status == "pending")) or 0
                unrouted = session.scalar(select(func.count()).where(Ticket.status == "new")) or 0
            if pending == 0 and stored_s is None:
                stored_s = time.perf_counter() - started
            if pending == 0 and unrouted == 0:
                break
            if (pending, unrouted) != progress:
                progress, progressed_at = (pending, unrouted), time.perf_counter()
            elif time.perf_counter() - progressed_at > 120:
                print(f"   no progress for 120 s ({pending} deliveries pending, {unrouted} tickets unrouted): "
                      "giving up this run", flush=True)
                break
            time.sleep(0.5)
        elapsed = time.perf_counter() - started
    finally:
        sampler.stop.set()
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)
    with db.session() as session:
        statuses = dict(session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
        tickets = session.scalar(select(func.count()).select_from(Ticket)) or 0
        unrouted = session.scalar(select(func.count()).where(Ticket.status == "new")) or 0
        by_status = dict(session.execute(select(Ticket.status, func.count()).group_by(Ticket.status)).all())
        acknowledged = session.scalar(select(func.count(func.distinct(Reply.ticket_id))).where(Reply.kind == "ack"))
        twice = session.scalar(select(func.count()).select_from(
            select(Reply.ticket_id).where(Reply.kind == "ack").group_by(Reply.ticket_id, Reply.channel)
            .having(func.count() > 1).subquery()))
    db.dispose()
    return {"workers": workers, "seconds": round(elapsed, 1), "stored_processed_s": round(stored_s or elapsed, 1),
            "deliveries_per_s": round(len(bodies) / elapsed, 1), "delivery_status": statuses,
            "tickets": tickets, "unrouted": unrouted, "ticket_status": by_status,
            "tickets_acknowledged": acknowledged, "acks_twice": twice,
            "peak_pss_mb_worker_and_horse": round(sampler.peak_worker / 1024, 1),
            "peak_pss_mb_sweeper": round(sampler.peak_sweeper / 1024, 1),
            "peak_pss_mb_largest_process": round(sampler.peak_process / 1024, 1)}


def noop(env: dict[str, str], jobs: int, workers: int) -> dict[str, float]:
    from redis import Redis
    from rq import Queue
    from rq.serializers import JSONSerializer

    redis = Redis.from_url(env["REDIS_URL"])
    redis.flushdb()
    queue = Queue("bench-noop", connection=redis, serializer=JSONSerializer)
    for start in range(0, jobs, 1000):
        queue.enqueue_many([queue.prepare_data("bench._noop.noop", args=(n,))
                            for n in range(start, min(jobs, start + 1000))])
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "bench._noop", env["REDIS_URL"]], cwd=ROOT, env=env,
                              stderr=subprocess.DEVNULL) for _ in range(workers)]
    for proc in procs:
        proc.wait()
    elapsed = time.perf_counter() - started
    redis.flushdb()
    return {"jobs": jobs, "seconds": round(elapsed, 1), "jobs_per_s": round(jobs / elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=100_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--noop-jobs", type=int, default=None,
                        help="no-op jobs per baseline run [default: --deliveries]; the rate is per job")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up a drain after this many seconds")
    parser.add_argument("--redis", default=os.environ.get("REDIS_BENCH_URL", "redis://127.0.0.1:6379/9"))
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    from ntbcare.core.settings import Settings
    from ntbcare.pipeline.bootstrap import initialise

    bodies, kinds = backlog(args.deliveries)
    distinct = args.deliveries - kinds["duplicate"]
    print(f"== surge: {args.deliveries} deliveries ({kinds}), PostgreSQL, {os.cpu_count()} cpus", flush=True)
    report: dict[str, object] = {"deliveries": args.deliveries, "mix": kinds, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        database_url, drop = prepare_database("postgres", Path(tmp))
        env = {**os.environ, **ENV, "DATABASE_URL": database_url, "REDIS_URL": args.redis,
               "PYTHONPATH": str(ROOT), "ROUTING_MODEL_PATH": str(Path(tmp) / "model.pkl")}
        try:
            initialise(Settings.from_env(env))
            for workers in [int(w) for w in args.workers.split(",")]:
                run = drain(env, database_url, bodies, workers, args.timeout)
                base = noop(env, args.noop_jobs or args.deliveries, workers)
                ratio = run["deliveries_per_s"] / base["jobs_per_s"]  # type: ignore[operator]
                # Every ticket but those judged not a complaint owes its acknowledgement (the bot stays silent there).
                owed = distinct - run["ticket_status"].get("not_complaint", 0)  # type: ignore[attr-defined]
                lost = (run["delivery_status"] != {"done": args.deliveries} or run["tickets"] != distinct
                        or run["unrouted"] or run["tickets_acknowledged"] != owed or run["acks_twice"])
                run.update(noop=base, ratio_vs_noop=round(ratio, 2), exact=not lost)
                report["runs"].append(run)  # type: ignore[attr-defined]
                print(f"{workers} worker(s): {args.deliveries} deliveries -> {run['tickets']} tickets "
                      f"(expected {distinct}) in {run['seconds']} s = {run['deliveries_per_s']}/s "
                      f"(all stored deliveries processed at {run['stored_processed_s']} s); acknowledged "
                      f"{run['tickets_acknowledged']}, unrouted {run['unrouted']}, acks twice {run['acks_twice']}, "
                      f"deliveries {run['delivery_status']}; {'EXACT' if not lost else 'MISMATCH'}", flush=True)
                print(f"   no-op RQ: {base['jobs']} jobs in {base['seconds']} s = {base['jobs_per_s']}/s; "
                      f"ratio {ratio:.1f}x (floor 5x); peak PSS per worker (with its work-horse) "
                      f"{run['peak_pss_mb_worker_and_horse']} MB (floor 250), its sweeper "
                      f"{run['peak_pss_mb_sweeper']} MB, largest process {run['peak_pss_mb_largest_process']} MB; "
                      f"tickets by status {run['ticket_status']}", flush=True)
        finally:
            drop()
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
