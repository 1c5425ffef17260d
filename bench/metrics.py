"""What the metrics cost: the counter the receiver increments per delivery, and a /metrics scrape on a large
database.

1. Per-call cost of ``ntbcare.core.metrics.delivery_received`` in a process without a metrics directory
   (values in memory) and in multiprocess mode (a memory-mapped file, as under gunicorn), against an empty
   Python call in the same process (the baseline).
2. Time of one scrape's database part (``DatabaseCollector`` and the watchdog's gauges, rendered) on a SQLite
   file with --deliveries stored deliveries and a fifth as many tickets, against rendering the process's own
   counters alone (the baseline).

Run: .venv/bin/python bench/metrics.py [--deliveries 100000] [--calls 200000]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from ntbcare.core import metrics  # noqa: E402
from ntbcare.core.db import Database  # noqa: E402
from ntbcare.core.metrics_db import DatabaseCollector  # noqa: E402
from ntbcare.core.migrate import upgrade  # noqa: E402
from ntbcare.core.models import Delivery, Ticket, utcnow  # noqa: E402
from ntbcare.core.settings import Settings  # noqa: E402
from ntbcare.pipeline.watchdog import WatchdogCollector  # noqa: E402


def per_call(function: Callable[[], None], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls * 1e9


def noop() -> None:
    return None


def fill(db: Database, deliveries: int) -> None:
    now = utcnow()
    statuses = ["done"] * 97 + ["failed", "pending", "pending"]
    with db.scope() as session:
        rows = [{"received_at": now - timedelta(seconds=i), "source": "webhook", "body": b"{}",
                 "body_sha256": f"{i:064x}", "status": statuses[i % 100], "attempts": 1} for i in range(deliveries)]
        for start in range(0, len(rows), 10_000):
            session.execute(insert(Delivery), rows[start:start + 10_000])
        ticket_status = ["new", "review", "routed", "forwarded", "answered", "closed", "not_complaint"]
        tickets = [{"number": f"NTB-2026-{i:06d}", "status": ticket_status[i % 7], "channel": "comment",
                    "text": "x", "origin_id": f"o{i}", "opened_at": now, "deadline_at": now - timedelta(hours=i % 5),
                    "link_version": 1, "tier": "normal", "urgent": False, "attachments": []}
                   for i in range(deliveries // 5)]
        for start in range(0, len(tickets), 10_000):
            session.execute(insert(Ticket), tickets[start:start + 10_000])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {args.calls} calls, "
          f"{args.deliveries} deliveries")

    baseline = min(per_call(noop, args.calls) for _ in range(3))
    memory = min(per_call(metrics.delivery_received, args.calls) for _ in range(3))
    with tempfile.TemporaryDirectory() as directory:
        metrics.prepare_multiprocess_dir(directory)
        mmap = min(per_call(metrics.delivery_received, args.calls) for _ in range(3))
    print(f"empty call (baseline)          {baseline:8.0f} ns")
    print(f"counter, values in memory      {memory:8.0f} ns  ({memory / baseline:.1f}x baseline)")
    print(f"counter, multiprocess (mmap)   {mmap:8.0f} ns  ({mmap / baseline:.1f}x baseline)")

    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/bench.db"
        db = Database(url)
        upgrade(db.engine)
        fill(db, args.deliveries)
        settings = Settings.from_env({"FB_APP_SECRET": "x" * 32, "FB_VERIFY_TOKEN": "v", "SECRET_KEY": "k" * 40,
                                      "FB_PAGE_ID": "104000000000001",
                                      "DATABASE_URL": url}, dotenv=False)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(DatabaseCollector(db))
        registry.register(WatchdogCollector(db, settings))
        own = metrics.process_registry()

        def timed(render: Callable[[], bytes]) -> float:
            samples = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                render()
                samples.append(time.perf_counter() - start)
            return statistics.median(samples) * 1000

        process_only = timed(lambda: generate_latest(own))
        database = timed(lambda: generate_latest(registry))
        db.dispose()
    print(f"scrape, process counters only  {process_only:8.2f} ms (baseline)")
    print(f"scrape, database gauges        {database:8.2f} ms  ({database / process_only:.0f}x baseline)")


if __name__ == "__main__":
    main()
