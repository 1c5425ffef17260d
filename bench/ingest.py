"""Ingest benchmark: durable webhook acknowledgements and backlog drain, each against a baseline run here.

1. Throughput: closed loop on POST /webhook (signed, distinct deliveries, durably committed) and on a trivial
   Flask route served by the same gunicorn (same workers, threads, body size). Ratio = webhook / trivial.
2. Latency: open loop at --rate deliveries/s; p50/p99/p99.9 counted from the scheduled send time.
3. A batched POST of 1,000 changes: time to the 200.
4. Drain: --drain stored deliveries processed into tickets by one `ntbcare worker --burst`, against the same
   number of no-op RQ jobs (one per delivery) on the same kind of worker. Ratio = no-op time / drain time.

Run: .venv/bin/python bench/ingest.py [--database sqlite|postgres] [--json FILE]. Loopback only; bounded.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.loadgen import closed_loop, open_loop  # noqa: E402

SECRET = "bench-app-secret-0123456789abcdef"  # secrets as production needs them (32 bytes or more)
ENV = {"FB_APP_SECRET": SECRET, "FB_VERIFY_TOKEN": "bench", "SECRET_KEY": "bench-secret-key-0123456789abcdef",
       "FB_PAGE_ID": "104000000000001", "LOG_LEVEL": "WARNING"}


def comment(n: int, run: str) -> bytes:
    value = {"from": {"id": f"7{n:015d}", "name": f"Warga {n}"},
             "message": f"Jalan rusak parah di Desa Sembalun nomor {n}, mohon segera diperbaiki pak 🙏",
             "post_id": "104000000000001_555000000000111", "comment_id": f"{run}_{n}",
             "parent_id": "104000000000001_555000000000111", "created_time": 1767225598, "item": "comment",
             "verb": "add"}
    return json.dumps({"object": "page", "entry": [{"id": "104000000000001", "time": 1767225600,
                                                     "changes": [{"field": "feed", "value": value}]}]}).encode()


def signed(body: bytes) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
            "Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_database(kind: str, tmp: Path) -> tuple[str, callable]:  # type: ignore[valid-type]
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}", lambda: None
    import psycopg

    base = os.environ.get("PG_BENCH_URL", "postgresql://127.0.0.1:5432/test")
    name = f"ntbcare_bench_{os.getpid()}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return base.rsplit("/", 1)[0] + "/" + name, drop


def start_server(env: dict[str, str], port: int, workers: int, threads: int) -> subprocess.Popen:  # type: ignore[type-arg]
    cmd = [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", str(workers), "--threads", str(threads),
           "-b", f"127.0.0.1:{port}", "--log-level", "warning", "bench._wsgi:app"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("gunicorn did not start")


def bench_http(env: dict[str, str], args: argparse.Namespace) -> dict[str, object]:
    port = free_port()
    server = start_server(env, port, args.workers, args.threads)
    out: dict[str, object] = {}
    try:
        sample = comment(0, "warm")

        def trivial(n: int):  # type: ignore[no-untyped-def]
            return "POST", "/bench/trivial", signed(sample), sample

        def webhook_for(run: str):  # type: ignore[no-untyped-def]
            def make(n: int):  # type: ignore[no-untyped-def]
                body = comment(n, run)
                return "POST", "/webhook", signed(body), body
            return make

        closed_loop("127.0.0.1", port, trivial, connections=args.connections, duration=2)  # warm-up
        base = closed_loop("127.0.0.1", port, trivial, connections=args.connections, duration=args.duration)
        hook = closed_loop("127.0.0.1", port, webhook_for("tp"), connections=args.connections,
                           duration=args.duration)
        out["trivial_route"] = base.summary()
        out["webhook"] = hook.summary()
        out["throughput_ratio"] = round(hook.rate / base.rate, 3) if base.rate else None
        latency = open_loop("127.0.0.1", port, webhook_for("lat"), rate=args.rate, duration=args.latency_duration)
        out["open_loop"] = {"rate_per_s": args.rate, "duration_s": args.latency_duration, **latency.summary()}
        batch_times = []
        for k in range(5):
            changes = [json.loads(comment(n, f"batch{k}"))["entry"][0]["changes"][0] for n in range(1000)]
            body = json.dumps({"object": "page", "entry": [{"id": "104000000000001", "time": 1767225600,
                                                             "changes": changes}]}).encode()
            started = time.perf_counter()
            r = requests.post(f"http://127.0.0.1:{port}/webhook", data=body, headers=signed(body), timeout=10)
            batch_times.append(time.perf_counter() - started)
            assert r.status_code == 200, r.status_code
        out["batch_1000_changes"] = {"bytes": len(body), "ack_ms_max": round(max(batch_times) * 1000, 1),
                                     "ack_ms_median": round(sorted(batch_times)[2] * 1000, 1)}
    finally:
        server.terminate()
        server.wait(timeout=30)
    return out


def bench_drain(env: dict[str, str], database_url: str, count: int) -> dict[str, object]:
    from redis import Redis
    from rq import Queue
    from rq.serializers import JSONSerializer
    from sqlalchemy import func, insert, select, text

    from ntbcare.core.db import Database
    from ntbcare.core.models import Delivery, Ticket
    from ntbcare.pipeline.dispatch import RQDispatcher
    from ntbcare.pipeline.sweeper import sweep

    redis = Redis.from_url(env["REDIS_URL"])
    redis.flushdb()
    db = Database(database_url)
    with db.scope() as session:
        for table in ("events", "ticket_messages", "audit_entries", "tickets", "citizens", "deliveries"):
            session.execute(text(f"DELETE FROM {table}"))
        session.execute(insert(Delivery), [
            {"body": comment(n, "drain"), "body_sha256": f"{n:064d}", "status": "pending", "attempts": 0,
             "source": "bench"} for n in range(count)])
    started = time.perf_counter()
    sweep(db, RQDispatcher(env["REDIS_URL"]).enqueue_now, redispatch_after=0)
    worker = subprocess.Popen([sys.executable, "-m", "ntbcare.cli", "worker", "--burst"], cwd=ROOT, env=env,
                              stderr=subprocess.DEVNULL)
    drain_s = None
    while worker.poll() is None:
        with db.session() as session:
            done = session.scalar(select(func.count()).where(Delivery.status == "done"))
        if drain_s is None and done == count:
            drain_s = time.perf_counter() - started
        time.sleep(0.05)
    total_s = time.perf_counter() - started
    assert worker.returncode == 0, worker.returncode
    with db.session() as session:
        done = session.scalar(select(func.count()).where(Delivery.status == "done"))
        tickets = session.scalar(select(func.count()).select_from(Ticket))
        unrouted = session.scalar(select(func.count()).where(Ticket.status == "new"))
    db.dispose()
    assert done == count and tickets == count and unrouted == 0, (done, tickets, unrouted)
    drain_s = drain_s or total_s

    queue = Queue("bench-noop", connection=redis, serializer=JSONSerializer)
    started = time.perf_counter()
    for start in range(0, count, 1000):
        queue.enqueue_many([queue.prepare_data("bench._noop.noop", args=(n,))
                            for n in range(start, min(count, start + 1000))])
    subprocess.run([sys.executable, "-m", "bench._noop", env["REDIS_URL"]], cwd=ROOT, env=env, check=True,
                   stderr=subprocess.DEVNULL)
    noop_s = time.perf_counter() - started
    redis.flushdb()
    return {"deliveries": count, "drain_s": round(drain_s, 2), "drain_per_s": round(count / drain_s, 1),
            "drain_and_route_s": round(total_s, 2), "routed_per_s": round(count / total_s, 1),
            "noop_rq_jobs_s": round(noop_s, 2), "noop_rq_jobs_per_s": round(count / noop_s, 1),
            "speedup_vs_noop": round(noop_s / drain_s, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--redis", default=os.environ.get("REDIS_BENCH_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--workers", type=int, default=None, help="default: as `ntbcare serve` (1 SQLite, 2 PG)")
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per closed-loop run")
    parser.add_argument("--rate", type=float, default=100.0, help="open-loop deliveries per second")
    parser.add_argument("--latency-duration", type=float, default=30.0)
    parser.add_argument("--drain", type=int, default=10_000, help="deliveries to drain (0 to skip)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if args.workers is None:
        args.workers = 1 if args.database == "sqlite" else 2

    from ntbcare.core.settings import Settings
    from ntbcare.pipeline.bootstrap import initialise

    with tempfile.TemporaryDirectory() as tmp:
        database_url, drop = prepare_database(args.database, Path(tmp))
        env = {**os.environ, **ENV, "DATABASE_URL": database_url, "REDIS_URL": args.redis,
               "PYTHONPATH": str(ROOT)}
        try:
            initialise(Settings.from_env(env))
            report: dict[str, object] = {
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                            "platform": platform.platform()},
                "database": args.database, "gunicorn": {"workers": args.workers, "threads": args.threads},
            }
            print(f"== ingest benchmark on {args.database} ({os.cpu_count()} cpus), "
                  f"gunicorn gthread {args.workers}x{args.threads}", flush=True)
            report["http"] = bench_http(env, args)
            http = report["http"]
            print(f"trivial route : {http['trivial_route']['rate_per_s']:>8} req/s  "
                  f"p50 {http['trivial_route']['p50_ms']} ms  p99 {http['trivial_route']['p99_ms']} ms")
            print(f"webhook       : {http['webhook']['rate_per_s']:>8} acks/s  "
                  f"p50 {http['webhook']['p50_ms']} ms  p99 {http['webhook']['p99_ms']} ms")
            print(f"ratio webhook/trivial: {http['throughput_ratio']}  (target >= 0.5)")
            ol = http["open_loop"]
            print(f"open loop {ol['rate_per_s']}/s for {ol['duration_s']} s: ok {ol['ok']} errors {ol['errors']} "
                  f"p50 {ol['p50_ms']} ms p99 {ol['p99_ms']} ms p99.9 {ol['p999_ms']} ms (target p99 < 250)")
            print(f"1,000-change POST acknowledged in {http['batch_1000_changes']['ack_ms_max']} ms max "
                  f"(target < 2000)", flush=True)
            if args.drain:
                report["drain"] = drain = bench_drain(env, database_url, args.drain)
                print(f"drain {drain['deliveries']} deliveries into tickets: {drain['drain_s']} s "
                      f"({drain['drain_per_s']}/s); {drain['deliveries']} no-op RQ jobs: {drain['noop_rq_jobs_s']} s; "
                      f"speedup {drain['speedup_vs_noop']}x (target >= 5)")
                print(f"  ... and every ticket classified, routed and acknowledged: {drain['drain_and_route_s']} s "
                      f"({drain['routed_per_s']}/s)")
        finally:
            drop()
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
