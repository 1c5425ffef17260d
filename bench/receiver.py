"""Receiver speed, black-box: `ntbcare serve` as a deployer runs it against a trivial Flask route, same run.

Shapes (each a real `ntbcare serve` process, durable acknowledgement: committed before the 200, SQLite
``synchronous=FULL``, PostgreSQL ``synchronous_commit=on``):

- ``redis-sqlite``  REDIS_URL set (the receiver alone; nothing drains the queue), SQLite
- ``redis-pg``      REDIS_URL set, PostgreSQL
- ``embedded``      no REDIS_URL, SQLite: the whole pipeline in the server's own threads

Baselines, started once and measured right before and after every shape run (interleaved, so a neighbour
loading the shared CPU slows both sides alike):

- ``flask``    a bare Flask app with one trivial route, stock gunicorn gthread, 2 processes x 4 threads
- ``project``  the same trivial route inside the production app under the project's own server settings
               (``ntbcare serve``'s worker class, processes and 64 threads)

Load: wrk (one thread, ``--connections``, ``--duration``) with pre-signed distinct comments; then an open loop
at ``--rate`` deliveries/s (bench/loadgen.py, latency from the scheduled send time). For ``embedded`` the
backlog left when wrk stops and the time its in-process workers take to drain it are printed too.

Run: .venv/bin/python bench/receiver.py [--rounds 3] [--duration 10] [--shapes redis-sqlite,redis-pg,embedded]
Needs wrk (apt install wrk), PostgreSQL and Redis on loopback (db 9 by default, flushed).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import ENV, SECRET, comment, free_port, prepare_database  # noqa: E402
from bench.loadgen import open_loop  # noqa: E402

LUA = ROOT / "bench" / "_wrk_bodies.lua"
SHAPES = ("redis-sqlite", "redis-pg", "embedded")


def sign(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def write_requests(path: Path, run: str, count: int, target: str) -> None:
    """``count`` distinct signed comments for ``target`` (a trivial route gets the same sizes of body)."""
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            body = comment(n, run)
            out.write(f"{sign(body)}\t{target}\t{body.decode()}\n")


def start(cmd: list[str], env: dict[str, str], port: int) -> subprocess.Popen:  # type: ignore[type-arg]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {' '.join(cmd)}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code in (200, 404):
                return proc
        except requests.RequestException:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"server did not start: {' '.join(cmd)}")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and all its descendants, from /proc."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return total
    return total + sum(cpu_seconds(int(child)) for child in children)


def wrk(port: int, request_file: Path, connections: int, duration: float,
        server: subprocess.Popen | None = None) -> dict[str, float]:  # type: ignore[type-arg]
    cpu_before = cpu_seconds(server.pid) if server is not None else 0.0
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{int(duration)}s", "--latency", "-s", str(LUA),
         f"http://127.0.0.1:{port}", "--", str(request_file)],
        capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)

    def pct(label: str) -> float:
        value, unit = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    cpu_ms = (cpu_seconds(server.pid) - cpu_before) * 1000 / total if server is not None and total else 0.0
    return {"rate": rate, "requests": total, "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(1) if errors else "", "p50_ms": pct("50"), "p99_ms": pct("99"),
            "cpu_ms_per_request": round(cpu_ms, 3)}


def pending(database_url: str) -> int:
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.split("///", 1)[1]) as conn:
            return int(conn.execute("SELECT count(*) FROM deliveries WHERE status = 'pending'").fetchone()[0])
    import psycopg

    with psycopg.connect(database_url.replace("postgresql+psycopg", "postgresql")) as conn:
        row = conn.execute("SELECT count(*) FROM deliveries WHERE status = 'pending'").fetchone()
        return int(row[0]) if row else 0


def wait_drained(database_url: str, limit: float = 600) -> float:
    started = time.monotonic()
    while pending(database_url) and time.monotonic() - started < limit:
        time.sleep(0.5)
    return time.monotonic() - started


def latency_run(port: int, run: str, rate: float, duration: float) -> dict[str, float]:
    def make(n: int):  # type: ignore[no-untyped-def]
        body = comment(n, run)
        return "POST", "/webhook", {"X-Hub-Signature-256": sign(body), "Content-Type": "application/json"}, body

    return open_loop("127.0.0.1", port, make, rate=rate, duration=duration, pool_size=16).summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rate", type=float, default=100.0, help="open-loop deliveries per second")
    parser.add_argument("--latency-duration", type=float, default=20.0)
    parser.add_argument("--redis", default=os.environ.get("REDIS_BENCH_URL", "redis://127.0.0.1:6379/9"))
    parser.add_argument("--bodies", type=int, default=60_000, help="distinct signed deliveries per wrk run")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--serve-args", default="", help="extra arguments for `ntbcare serve` (e.g. '--workers 1')")
    args = parser.parse_args()
    shapes = [s for s in args.shapes.split(",") if s]

    from redis import Redis

    from ntbcare.core.settings import Settings
    from ntbcare.pipeline.bootstrap import initialise

    redis = Redis.from_url(args.redis)
    redis.flushdb()
    servers: list[subprocess.Popen] = []  # type: ignore[type-arg]
    report: dict[str, object] = {"cpus": os.cpu_count(), "connections": args.connections,
                                 "duration_s": args.duration, "rounds": args.rounds, "shapes": {}}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        base_env = {**os.environ, **ENV, "PYTHONPATH": str(ROOT), "ROUTING_MODEL_PATH": str(tmp / "model.pkl")}
        databases: dict[str, tuple[str, object]] = {}
        try:
            for kind in ("sqlite", "postgres"):
                if kind == "postgres" and "redis-pg" not in shapes:
                    continue
                (tmp / kind).mkdir()
                databases[kind] = prepare_database(kind, tmp / kind)
                initialise(Settings.from_env({**base_env, "DATABASE_URL": databases[kind][0]}))
            python = sys.executable
            flask_port = free_port()
            flask = start([python, "-m", "gunicorn", "-k", "gthread", "-w", "2", "--threads", "4",
                           "-b", f"127.0.0.1:{flask_port}", "--log-level", "warning", "bench._trivial:app"],
                          base_env, flask_port)
            servers.append(flask)
            trivial_file = tmp / "trivial.txt"
            write_requests(trivial_file, "trivial", 1, "/trivial")
            project_file = tmp / "project.txt"
            write_requests(project_file, "project", 1, "/bench/trivial")
            for shape in shapes:
                kind = "postgres" if shape == "redis-pg" else "sqlite"
                database_url = databases[kind][0]
                env = {**base_env, "DATABASE_URL": database_url}
                if shape != "embedded":
                    env["REDIS_URL"] = args.redis
                port, project_port = free_port(), free_port()
                workers = "1"  # as `ntbcare serve` runs by default
                serve = start([python, "-m", "ntbcare.cli", "serve", "--port", str(port), *args.serve_args.split()],
                              env, port)
                servers.append(serve)
                project = start([python, "-m", "gunicorn", "-k", "ntbcare.server_protocol.FrontWorker",
                                 "-w", workers, "--threads", "64", "-b", f"127.0.0.1:{project_port}",
                                 "--log-level", "warning", "bench._wsgi:front"], env, project_port)
                servers.append(project)
                rows = []
                wrk(flask_port, trivial_file, args.connections, 2)  # warm-up, all three
                wrk(project_port, project_file, args.connections, 2)
                warm = tmp / f"{shape}-warm.txt"
                write_requests(warm, f"{shape}-warm", 5000, "/webhook")
                wrk(port, warm, args.connections, 2)
                wait_drained(database_url) if shape == "embedded" else None
                for round_no in range(args.rounds):
                    hook_file = tmp / f"{shape}-{round_no}.txt"
                    write_requests(hook_file, f"{shape}r{round_no}", args.bodies, "/webhook")
                    before = wrk(flask_port, trivial_file, args.connections, args.duration, flask)
                    hook = wrk(port, hook_file, args.connections, args.duration, serve)
                    backlog = pending(database_url) if shape == "embedded" else 0
                    drain_s = wait_drained(database_url) if shape == "embedded" else 0.0
                    after = wrk(flask_port, trivial_file, args.connections, args.duration)
                    own = wrk(project_port, project_file, args.connections, args.duration, project)
                    flask_rate = (before["rate"] + after["rate"]) / 2
                    row = {"flask": flask_rate, "project_route": own["rate"], "webhook": hook,
                           "cpu_ms": {"flask": before["cpu_ms_per_request"], "project_route": own["cpu_ms_per_request"],
                                      "webhook": hook["cpu_ms_per_request"]},
                           "ratio_flask": hook["rate"] / flask_rate, "ratio_project": hook["rate"] / own["rate"],
                           "embedded_backlog": backlog, "embedded_drain_s": round(drain_s, 1),
                           "load": os.getloadavg()[0]}
                    rows.append(row)
                    print(f"{shape:13} round {round_no + 1}: webhook {hook['rate']:7.0f}/s p99 {hook['p99_ms']:6.1f} ms"
                          f" non-2xx {hook['non_2xx']} | flask 2x4 {flask_rate:7.0f}/s ratio {row['ratio_flask']:.2f}"
                          f" | project route {own['rate']:7.0f}/s ratio {row['ratio_project']:.2f}"
                          + (f" | backlog {backlog} drained in {drain_s:.1f} s" if shape == "embedded" else "")
                          + f" | CPU ms/request: webhook {hook['cpu_ms_per_request']:.2f}, flask "
                          f"{before['cpu_ms_per_request']:.2f}, project route {own['cpu_ms_per_request']:.2f}"
                          + f" | load {row['load']:.1f}", flush=True)
                lat = latency_run(port, f"{shape}-lat", args.rate, args.latency_duration)
                left = pending(database_url) if shape == "embedded" else 0
                print(f"{shape:13} open loop {args.rate:.0f}/s for {args.latency_duration:.0f} s: ok {lat['ok']} "
                      f"errors {lat['errors']} p50 {lat['p50_ms']} ms p99 {lat['p99_ms']} ms p99.9 {lat['p999_ms']} ms"
                      + (f" | pending right after: {left}" if shape == "embedded" else ""), flush=True)
                wait_drained(database_url) if shape == "embedded" else None
                summary = {
                    "webhook_per_s": statistics.median(r["webhook"]["rate"] for r in rows),
                    "webhook_p99_ms": statistics.median(r["webhook"]["p99_ms"] for r in rows),
                    "flask_per_s": statistics.median(r["flask"] for r in rows),
                    "project_route_per_s": statistics.median(r["project_route"] for r in rows),
                    "ratio_flask": statistics.median(r["ratio_flask"] for r in rows),
                    "ratio_project": statistics.median(r["ratio_project"] for r in rows),
                    "open_loop": lat, "rounds": rows,
                }
                report["shapes"][shape] = summary  # type: ignore[index]
                print(f"{shape:13} MEDIAN: webhook {summary['webhook_per_s']:.0f}/s, flask 2x4 "
                      f"{summary['flask_per_s']:.0f}/s, ratio {summary['ratio_flask']:.2f}; project route "
                      f"{summary['project_route_per_s']:.0f}/s, ratio {summary['ratio_project']:.2f}", flush=True)
                for proc in (serve, project):
                    proc.terminate()
                    proc.wait(timeout=30)
        finally:
            for proc in servers:
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(timeout=30)
            for _, drop in databases.values():
                drop()  # type: ignore[operator]
            redis.flushdb()
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
