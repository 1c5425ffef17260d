"""Operator console benchmark: the review queue (/ops/review), ticket search (/ops/tickets with and without
filters and free text) and a ticket page at --tickets (100,000 by default), against a trivial route (/healthz)
of the same app, in the same process and run.

The database gets --tickets tickets over the last 365 days across 40 agencies and 12 locations, written in
arrival order (ids and numbers follow opened_at, as the service writes them), each with a named citizen, its
message and a routing audit entry; ~20 % are in review with the classifier's candidates. On PostgreSQL the
seeded tables are then analysed (VACUUM ANALYZE), as autovacuum does after a bulk load.
A signed-in operator requests each route --requests times through Flask's test client (no network, so the
figures are the app's own time, session check and banners included); p50/p95 are reported with the ratio of
p50 to the trivial route's. The review queue is measured twice: as repeated page loads find it (each place's
tickets of the last 14 days kept from the previous load, nothing having changed), and with every place's
tickets read again before each request. Target: p95 under 150 ms for the review queue and search.

Run: .venv/bin/python bench/console.py [--database-url URL] [--tickets 100000] [--requests 100] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import re
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
from ntbcare.core.models import Agency, AuditEntry, Citizen, Ticket, TicketMessage, utcnow  # noqa: E402
from ntbcare.core.settings import Settings  # noqa: E402
from ntbcare.pipeline import operator_accounts  # noqa: E402
from ntbcare.pipeline.console_duplicates import forget_pools  # noqa: E402
from ntbcare.pipeline.dispatch import InlineDispatcher  # noqa: E402
from ntbcare.pipeline.runtime import Runtime  # noqa: E402

TEXTS = ["Jalan berlubang di depan sekolah, mohon diperbaiki.", "Lampu jalan mati sejak seminggu di Ampenan.",
         "Puskesmas tutup saat jam layanan, warga menunggu lama.", "Sampah menumpuk di pasar Kebon Roek.",
         "Air PDAM tidak mengalir tiga hari di Cakranegara."]
NAMES = ["Budi", "Siti", "Ahmad", "Ni Luh", "Lalu", "Baiq", "Made", "Dewi", "Rizki", "Putu"]
LOCATIONS = [f"52{n:02d}" for n in range(1, 13)]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def seed(db: Database, count: int, rng: random.Random) -> None:
    now = utcnow()
    codes = [f"OPD{n:02d}" for n in range(40)]
    with db.scope() as s:
        s.add_all([Agency(code=c, name=f"Organisasi Perangkat Daerah {c}", kind="opd", emails=[f"{c}@x.test"])
                   for c in codes])
    citizens, tickets, messages, audits = [], [], [], []
    # Tickets arrive in time order, so ids and numbers follow opened_at, as the service writes them.
    arrivals = sorted(now - timedelta(minutes=rng.uniform(0, 365 * 24 * 60)) for _ in range(count))
    for n, opened in enumerate(arrivals, start=1):
        citizens.append({"id": n, "fb_user_id": f"u{n}", "display_name": f"{rng.choice(NAMES)} Warga{n}",
                         "created_at": now, "updated_at": now})
        roll = rng.random()
        status = ("review" if roll < 0.2 else "not_complaint" if roll < 0.25 else "forwarded" if roll < 0.45
                  else "closed" if roll < 0.55 else "answered")
        agency = rng.choice(codes) if status not in ("not_complaint", "review") else None
        text = f"{rng.choice(TEXTS)} Laporan {n}."
        candidates = [{"agency": c, "score": round(rng.random(), 2)} for c in rng.sample(codes, 3)]
        tickets.append({"id": n, "number": f"NTB-{opened.year}-{n:06d}", "status": status, "channel": "comment",
                        "text": text, "attachments": [], "agency_code": agency, "origin_id": f"o{n}",
                        "citizen_id": n, "tier": "normal", "opened_at": opened, "location_code": rng.choice(LOCATIONS),
                        "deadline_at": opened + timedelta(days=3), "link_version": 1, "urgent": False,
                        "classification": {"candidates": candidates}, "created_at": opened, "updated_at": opened,
                        "review_reason": "low_confidence" if status == "review" else None})
        messages.append({"ticket_id": n, "external_id": f"o{n}", "kind": "comment", "text": text, "attachments": [],
                         "occurred_at": opened, "removed": False, "hidden": False, "created_at": opened})
        audits.append({"ticket_id": n, "at": opened + timedelta(minutes=1), "actor": "classifier",
                       "action": "routed" if agency else "review", "detail": {}})
    with db.scope() as s:
        for table, rows in ((Citizen, citizens), (Ticket, tickets), (TicketMessage, messages), (AuditEntry, audits)):
            for start in range(0, len(rows), 5000):
                s.execute(insert(table), rows[start:start + 5000])
        operator_accounts.add(s, "bench", "kata-sandi-bench-1", role="operator", name="Bench")


def measure(client, path: str, requests: int, cold: bool = False) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """``cold``: before each request, forget the review queue's kept pools, so it reads every place's tickets of
    the last 14 days, as after a burst that changed every place (otherwise only changed places are read)."""
    timings = []
    for _ in range(requests):
        if cold:
            forget_pools()
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    timings.sort()
    return {"p50_ms": round(statistics.median(timings), 2),
            "p95_ms": round(timings[max(0, math.ceil(len(timings) * 0.95) - 1)], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--out")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="ntbcare-bench-console-")
    url = args.database_url or f"sqlite:///{workdir}/bench.db"
    db = Database(url)
    upgrade(db.engine)
    started = time.perf_counter()
    seed(db, args.tickets, random.Random(8))
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    seeded = time.perf_counter() - started
    settings = Settings.from_env({"DATABASE_URL": url, "FB_APP_SECRET": "b" * 32, "FB_VERIFY_TOKEN": "bench",
                                  "FB_PAGE_ID": "1", "SECRET_KEY": "s" * 40, "REDIS_URL": "",
                                  "ROUTING_MODEL_PATH": f"{workdir}/model.pkl"})
    runtime = Runtime(settings=settings, db=db, dispatcher=InlineDispatcher(lambda ids: None))
    client = create_app(runtime=runtime).test_client()
    token = CSRF.search(client.get("/ops/login").get_data(as_text=True))
    assert token, "no login form"
    signed = client.post("/ops/login", data={"csrf_token": token.group(1), "username": "bench",
                                             "password": "kata-sandi-bench-1"})
    assert signed.status_code == 303, signed.status_code
    routes = {"trivial /healthz": "/healthz", "/ops/review": "/ops/review", "/ops/tickets": "/ops/tickets",
              "/ops/tickets?q=<number>": "",
              "/ops/tickets?q=<text>": "/ops/tickets?q=Cakranegara",
              "/ops/tickets?q=<rare name>": f"/ops/tickets?q=Warga{args.tickets - 7}",
              "/ops/tickets?agency&status": "/ops/tickets?agency=OPD07&status=forwarded",
              "/ops/tickets?overdue=1": "/ops/tickets?overdue=1",
              "/ops/tickets?page=50": "/ops/tickets?page=50",
              "/ops/tickets/<number>": f"/ops/tickets/{args.tickets // 3}"}
    with db.session() as session:
        routes["/ops/tickets/<number>"] = f"/ops/tickets/{session.get(Ticket, args.tickets // 3).number}"
        routes["/ops/tickets?q=<number>"] = f"/ops/tickets?q={session.get(Ticket, args.tickets // 2).number}"
    results = {name: measure(client, path, args.requests) for name, path in routes.items()}
    results["/ops/review, every pool read"] = measure(client, "/ops/review", args.requests, cold=True)
    base = results["trivial /healthz"]["p50_ms"]
    for row in results.values():
        row["p50_ratio"] = round(row["p50_ms"] / base, 1)
    report = {"tickets": args.tickets, "database": url.split(":", 1)[0], "seed_seconds": round(seeded, 1),
              "requests_per_route": args.requests, "python": platform.python_version(), "routes": results}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    db.dispose()


if __name__ == "__main__":
    main()
