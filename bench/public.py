"""Public accountability benchmark: /transparansi, /transparansi.csv and /open311/v2/requests.json at --tickets
(100,000 by default) against a trivial route (/healthz) of the same app, in the same process and run.

The database gets --tickets tickets spread over the last 365 days across 40 agencies, with their audit trail
(``routed`` for every complaint, ``agency_answer`` for ~70 %), agency answers, withdrawn and not-a-complaint
tickets. Each route is requested --requests times through Flask's test client (no network, so the figures are
the app's own time); p50/p95 are reported with the ratio to the trivial route's p50. "cold" is the first
request of a period after the cache is emptied (the figures computed from the audit trail), "warm" the steady
state within the one-minute cache; "served" starts an app as `ntbcare serve` does (its warmer computes this
month at start) and times how long until the default page is warm and what the first visitor then waits.

Run: .venv/bin/python bench/public.py [--database-url URL] [--tickets 100000] [--requests 200] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from ntbcare.app import create_app  # noqa: E402
from ntbcare.core.db import Database  # noqa: E402
from ntbcare.core.migrate import upgrade  # noqa: E402
from ntbcare.core.models import Agency, AgencyAnswer, AuditEntry, Ticket, utcnow  # noqa: E402
from ntbcare.core.settings import Settings  # noqa: E402
from ntbcare.pipeline.accountability.cache import cached_periods, clear_cache  # noqa: E402
from ntbcare.pipeline.accountability.periods import current_month, previous_month  # noqa: E402
from ntbcare.pipeline.dispatch import InlineDispatcher  # noqa: E402
from ntbcare.pipeline.runtime import Runtime  # noqa: E402
from ntbcare.web.open311 import clear_read_cache  # noqa: E402

TEXTS = ["Jalan berlubang di depan sekolah, mohon diperbaiki.", "Lampu jalan mati sejak seminggu di Ampenan.",
         "Puskesmas tutup saat jam layanan, warga menunggu lama.", "Sampah menumpuk di pasar Kebon Roek.",
         "Air PDAM tidak mengalir tiga hari di Cakranegara, hubungi 081234567890."]


def seed(db: Database, count: int, rng: random.Random) -> None:
    now = utcnow()
    codes = [f"OPD{n:02d}" for n in range(40)]
    with db.scope() as s:
        s.add_all([Agency(code=c, name=f"Organisasi Perangkat Daerah {c}", kind="opd", emails=[f"{c}@x.test"])
                   for c in codes])
    tickets, audits, answers = [], [], []
    # Ids grow with time and the trail is written in time order, as the service appends them.
    moments = sorted(now - timedelta(minutes=rng.uniform(0, 365 * 24 * 60)) for _ in range(count))
    for n, opened in enumerate(moments, start=1):
        roll = rng.random()
        status = ("not_complaint" if roll < 0.05 else "withdrawn" if roll < 0.08 else "forwarded" if roll < 0.3
                  else "closed" if roll < 0.4 else "answered")
        agency = rng.choice(codes) if status != "not_complaint" else None
        tickets.append({"id": n, "number": f"NTB-{opened.year}-{n:06d}", "status": status, "channel": "comment",
                        "text": rng.choice(TEXTS), "attachments": [], "agency_code": agency, "origin_id": f"o{n}",
                        "tier": "normal", "opened_at": opened, "deadline_at": opened + timedelta(days=3),
                        "link_version": 1, "urgent": False, "created_at": opened, "updated_at": opened})
        if agency is None:
            continue
        audits.append({"ticket_id": n, "at": opened + timedelta(minutes=1), "actor": "system", "action": "routed",
                       "detail": {"agency": agency}})
        if status in ("answered", "closed"):
            at = opened + timedelta(hours=rng.uniform(1, 120))
            audits.append({"ticket_id": n, "at": at, "actor": f"agency:{agency}", "action": "agency_answer",
                           "detail": {}})
            answers.append({"ticket_id": n, "agency_code": agency, "action": "answer", "link_version": 1,
                            "text": "Sudah ditindaklanjuti petugas kami.", "created_at": at})
    audits.sort(key=lambda row: row["at"])
    answers.sort(key=lambda row: row["created_at"])
    with db.scope() as s:
        for table, rows in ((Ticket, tickets), (AuditEntry, audits), (AgencyAnswer, answers)):
            for start in range(0, len(rows), 5000):
                s.execute(insert(table), rows[start:start + 5000])


def measure(client, path: str, requests: int, clear: bool) -> dict[str, float]:  # type: ignore[no-untyped-def]
    timings = []
    for _ in range(requests):
        if clear:
            clear_cache()
            clear_read_cache()
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    timings.sort()
    return {"p50_ms": round(statistics.median(timings), 2),
            "p95_ms": round(timings[max(0, math.ceil(len(timings) * 0.95) - 1)], 2)}


def served_start(runtime: Runtime) -> dict[str, float]:
    """A served web process: its warmer computes this month at start; how long until the default page is warm,
    and what the first visitor after that waits."""
    clear_cache()
    started = time.perf_counter()
    app = create_app(runtime=runtime, warm_figures=True)
    period_key = current_month(utcnow()).key
    while period_key not in cached_periods():
        time.sleep(0.005)
    warmed = (time.perf_counter() - started) * 1000
    client = app.test_client()
    first = time.perf_counter()
    assert client.get("/transparansi").status_code == 200
    visitor = (time.perf_counter() - first) * 1000  # includes compiling the page's templates once
    after = measure(client, "/transparansi", 20, clear=False)
    app.extensions["figures-warmer"].stop()
    return {"served_warm_after_start_ms": round(warmed, 1), "served_first_visitor_ms": round(visitor, 2),
            "served_next_p50_ms": after["p50_ms"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--cold", type=int, default=5, help="cold requests per route (cache emptied before each)")
    parser.add_argument("--out")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="ntbcare-bench-public-")
    url = args.database_url or f"sqlite:///{workdir}/bench.db"
    db = Database(url)
    upgrade(db.engine)
    started = time.perf_counter()
    seed(db, args.tickets, random.Random(9))
    seeded = time.perf_counter() - started
    settings = Settings.from_env({"DATABASE_URL": url, "FB_APP_SECRET": "b" * 32, "FB_VERIFY_TOKEN": "bench",
                                  "FB_PAGE_ID": "1", "SECRET_KEY": "s" * 40, "REDIS_URL": "",
                                  "ROUTING_MODEL_PATH": f"{workdir}/model.pkl"})
    runtime = Runtime(settings=settings, db=db, dispatcher=InlineDispatcher(lambda ids: None))
    client = create_app(runtime=runtime).test_client()
    routes = {"trivial /healthz": "/healthz", "/transparansi": "/transparansi",
              "/transparansi.csv": "/transparansi.csv", "/open311/v2/requests.json": "/open311/v2/requests.json"}
    results: dict[str, dict[str, float]] = {}
    for name, path in routes.items():
        warm = measure(client, path, args.requests, clear=False)
        cold = measure(client, path, args.cold, clear=True)
        results[name] = {**{f"warm_{k}": v for k, v in warm.items()}, **{f"cold_{k}": v for k, v in cold.items()}}
    last_month = previous_month(utcnow())
    results["/transparansi?bulan=<last month> (full month)"] = {
        f"cold_{k}": v for k, v in measure(client, f"/transparansi?bulan={last_month.first:%Y-%m}", args.cold,
                                           clear=True).items()}
    results["/transparansi"].update(served_start(runtime))
    base = results["trivial /healthz"]["warm_p50_ms"]
    for row in results.values():
        if "warm_p50_ms" in row:
            row["warm_p50_ratio"] = round(row["warm_p50_ms"] / base, 1)
    report = {"tickets": args.tickets, "database": url.split(":", 1)[0], "seed_seconds": round(seeded, 1),
              "loadavg": Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else None,
              "requests_per_route": args.requests, "python": platform.python_version(), "routes": results}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    db.dispose()


if __name__ == "__main__":
    main()
