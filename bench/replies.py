"""Reply sender benchmark: throughput and behaviour under rate limiting, against a stand-in Graph API on loopback.

1. Throughput: --count agency answers owed as public comment replies, sent by ``send_due_replies`` (claim, POST,
   record outcome, ticket -> answered), against a baseline in the same process: a bare ``requests`` loop making
   the same POSTs to the same server. Ratio = sender / baseline.
2. Rate limiting: the server answers every call with error 613 and a usage header announcing a 1-minute block.
   The sender is run every 50 ms for --pause-seconds; the server counts the calls that reach it (expected: the
   one that got the 613, then 0). The limit is then lifted, the block's end is simulated (governor clock and
   ``now`` moved past it) and the time to drain the backlog is measured.

Run: .venv/bin/python bench/replies.py [--database-url URL] [--count 500] [--out FILE]. Loopback only; bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.graph import GraphClient  # noqa: E402
from bot.outbox import owe_answer  # noqa: E402
from bot.ratelimit import UsageGovernor  # noqa: E402
from bot.sender import send_due_replies  # noqa: E402
from ntbcare.core.db import Database  # noqa: E402
from ntbcare.core.migrate import upgrade  # noqa: E402
from ntbcare.core.models import Agency, AgencyAnswer, Reply, ReplyStatus, Ticket, utcnow  # noqa: E402
from ntbcare.core.settings import Settings  # noqa: E402

PAGE_ID = "104000000000001"
VERSION = "v25.0"
ENV = {"FB_APP_SECRET": "bench-app-secret-0123456789abcdef", "FB_VERIFY_TOKEN": "bench",
       "SECRET_KEY": "bench-secret-key-0123456789abcdef", "FB_PAGE_ID": PAGE_ID,
       "FB_PAGE_ACCESS_TOKEN": "bench-token", "LOG_LEVEL": "WARNING"}
THROTTLE_HEADER = json.dumps({PAGE_ID: [{"type": "pages", "call_count": 100, "total_cputime": 10,
                                         "total_time": 10, "estimated_time_to_regain_access": 1}]})
CALM_HEADER = json.dumps({PAGE_ID: [{"type": "pages", "call_count": 5, "total_cputime": 1, "total_time": 1,
                                     "estimated_time_to_regain_access": 0}]})


class StandInGraph(BaseHTTPRequestHandler):
    """Answers comment replies like Graph does (with a low usage header); while ``throttled`` every call gets
    error 613 with a usage header at 100 % announcing a 1-minute block."""

    throttled = threading.Event()
    hits: list[float] = []
    lock = threading.Lock()
    counter = 0
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    def log_message(self, *args: object) -> None:
        return None

    def _answer(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        with StandInGraph.lock:
            StandInGraph.hits.append(time.monotonic())
            StandInGraph.counter += 1
            number = StandInGraph.counter
        if StandInGraph.throttled.is_set():
            error = {"message": "(#613) Calls to this api have exceeded the rate limit.", "type": "OAuthException",
                     "code": 613}
            self._answer(400, {"error": error}, {"X-Business-Use-Case-Usage": THROTTLE_HEADER})
        elif self.command == "GET":
            self._answer(200, {"data": []}, {"X-Business-Use-Case-Usage": CALM_HEADER})
        else:
            self._answer(200, {"id": f"555000000000111_r{number}"}, {"X-Business-Use-Case-Usage": CALM_HEADER})

    do_GET = do_POST = _handle


class OffsetClock:
    """Monotonic time that the benchmark can move forward (to end a rate-limit block without waiting it out)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


def owe_answers(db: Database, start: int, count: int) -> None:
    with db.scope() as session:
        if session.get(Agency, "PUPR") is None:
            session.add(Agency(code="PUPR", name="Dinas PUPR NTB", kind="opd", emails=[]))
            session.flush()
        now = utcnow()
        for n in range(start, start + count):
            comment_id = f"555000000000111_{600000000000 + n}"
            ticket = Ticket(number=f"NTB-2026-{n:06d}", channel="comment", text="Jalan rusak", origin_id=comment_id,
                            comment_id=comment_id, post_id="104000000000001_555000000000111", status="forwarded",
                            agency_code="PUPR", opened_at=now, last_citizen_message_at=now)
            session.add(ticket)
            session.flush()
            answer = AgencyAnswer(ticket_id=ticket.id, agency_code="PUPR", action="answer",
                                  text=f"Perbaikan jalan untuk laporan {n} dijadwalkan minggu depan.", link_version=1)
            session.add(answer)
            owe_answer(session, ticket, answer)


def open_count(db: Database) -> int:
    with db.session() as session:
        return session.query(Reply).filter(Reply.status.in_(ReplyStatus.OPEN)).count()


def measure_throughput(db: Database, settings: Settings, client: GraphClient, base: str, count: int) -> dict:
    owe_answers(db, 1, count)
    started = time.perf_counter()
    passes = 0
    while open_count(db):
        send_due_replies(db, settings, client, limit=100)
        passes += 1
    sender_seconds = time.perf_counter() - started
    with requests.Session() as session:
        started = time.perf_counter()
        for n in range(count):
            session.post(f"{base}/{VERSION}/555000000000111_{n}/comments", timeout=(3.05, 20),
                         data={"message": "Tanggapan Dinas PUPR NTB atas laporan NTB-2026-000001: perbaikan.",
                               "access_token": "bench-token"}).raise_for_status()
        baseline_seconds = time.perf_counter() - started
    return {"count": count, "passes": passes, "sender_seconds": sender_seconds,
            "sender_per_second": count / sender_seconds, "baseline_seconds": baseline_seconds,
            "baseline_per_second": count / baseline_seconds,
            "ratio": (count / sender_seconds) / (count / baseline_seconds)}


def measure_rate_limit(db: Database, settings: Settings, client: GraphClient, clock: OffsetClock, count: int,
                       pause_seconds: float) -> dict:
    owe_answers(db, 100000, count)
    StandInGraph.throttled.set()
    hits_before = len(StandInGraph.hits)
    send_due_replies(db, settings, client, limit=100)  # meets the 613
    first_hits = len(StandInGraph.hits) - hits_before
    window_start, passes = len(StandInGraph.hits), 0
    deadline = time.monotonic() + pause_seconds
    while time.monotonic() < deadline:
        send_due_replies(db, settings, client, limit=100)
        passes += 1
        time.sleep(0.05)
    calls_during_pause = len(StandInGraph.hits) - window_start
    StandInGraph.throttled.clear()
    clock.offset += 61.0  # the announced block (1 minute) has passed
    later = utcnow() + timedelta(seconds=61)
    started = time.perf_counter()
    drain_passes = 0
    while open_count(db):
        send_due_replies(db, settings, client, limit=100, now=later + timedelta(seconds=time.perf_counter() - started))
        drain_passes += 1
    drain_seconds = time.perf_counter() - started
    return {"count": count, "calls_hitting_the_limit": first_hits, "pause_seconds": pause_seconds,
            "sender_passes_during_pause": passes, "calls_during_pause": calls_during_pause,
            "drain_seconds": drain_seconds, "drain_per_second": count / drain_seconds, "drain_passes": drain_passes}


def write_report(path: Path, url: str, throughput: dict, limited: dict, *, append: bool) -> None:
    database = url.split("://", 1)[0]
    lines = [] if append else ["# Reply sender benchmark (bench/replies.py)", ""]
    lines += [
        f"## Database: {database}",
        "",
        f"Machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs. "
        "Stand-in Graph API: threaded http.server on 127.0.0.1 (TCP_NODELAY), usage headers on every answer.",
        "",
        "### Throughput (public comment replies, one sender process)",
        "",
        "| run | replies | seconds | replies/s |",
        "|---|---|---|---|",
        f"| send_due_replies (claim, POST, record, ticket answered) | {throughput['count']} | "
        f"{throughput['sender_seconds']:.2f} | {throughput['sender_per_second']:.0f} |",
        f"| baseline: bare requests.post loop, same server | {throughput['count']} | "
        f"{throughput['baseline_seconds']:.2f} | {throughput['baseline_per_second']:.0f} |",
        "",
        f"Ratio sender / baseline: {throughput['ratio']:.2f} ({throughput['passes']} sender passes of up to 100).",
        "Meta's Send API limit is 300 calls/s per Page; Pages BUC limits are per hour.",
        "",
        "### Under rate limiting (error 613, block of 1 minute announced in X-Business-Use-Case-Usage)",
        "",
        f"- calls that met the limit: {limited['calls_hitting_the_limit']} (the pass stops at the first 613)",
        f"- sender passes run during the {limited['pause_seconds']:.0f} s pause: "
        f"{limited['sender_passes_during_pause']}; calls reaching the server: {limited['calls_during_pause']}",
        f"- after the block ended (simulated): {limited['count']} replies drained in {limited['drain_seconds']:.2f} s "
        f"({limited['drain_per_second']:.0f}/s, {limited['drain_passes']} passes)",
        "",
    ]
    with path.open("a" if append else "w") as report:
        report.write("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--pause-seconds", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as Markdown to FILE")
    parser.add_argument("--append", action="store_true", help="add to the report instead of replacing it")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='ntbcare-bench-')}/replies.db"
    db = Database(url)
    upgrade(db.engine)
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandInGraph)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    settings = Settings.from_env({**ENV, "DATABASE_URL": url}, dotenv=False)
    clock = OffsetClock()
    client = GraphClient(base, VERSION, PAGE_ID, "bench-token", "bench-secret",
                         governor=UsageGovernor(clock=clock))
    try:
        throughput = measure_throughput(db, settings, client, base, args.count)
        limited = measure_rate_limit(db, settings, client, clock, args.count, args.pause_seconds)
    finally:
        client.close()
        server.shutdown()
        db.dispose()
    if args.out is not None:
        write_report(args.out, url, throughput, limited, append=args.append)
    print(json.dumps({"throughput": throughput, "rate_limit": limited}, indent=2))


if __name__ == "__main__":
    main()
