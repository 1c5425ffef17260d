"""Metrics and JSON logs in the production shape: `ntbcare serve` with two gunicorn processes and an RQ worker
(a work-horse per job) on PostgreSQL and Redis, sharing METRICS_DIR. /metrics adds up what every process counted;
every line the worker writes is a JSON object."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from ntbcare.pipeline.classifier import load_classifier
from tests.conftest import BASE_ENV, MODEL_PATH, drop_postgres_database, fresh_postgres_database, redis_url
from tests.test_e2e_processes import Server, ntbcare, post, stop, wait_for_tickets, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # three services start on 2 shared cores

TOKEN = "metrics-token-for-the-process-test-0123"


def scrape(base: str) -> dict[tuple[str, tuple], float]:
    response = requests.get(base + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(response.text) for s in f.samples}


def test_metrics_add_up_across_gunicorn_and_rq_processes(tmp_path):
    from redis import Redis

    load_classifier(MODEL_PATH, BASE_ENV["SECRET_KEY"])  # trained here once, so `init` has nothing to train
    rurl = redis_url()
    Redis.from_url(rurl).flushdb()
    db_url = fresh_postgres_database()
    metrics_dir = tmp_path / "metrics"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **BASE_ENV, "DATABASE_URL": db_url,
           "REDIS_URL": rurl, "LOG_LEVEL": "INFO", "METRICS_TOKEN": TOKEN, "METRICS_DIR": str(metrics_dir),
           "LOG_FORMAT": "json", "INGEST_BATCH_SIZE": "5"}
    procs: list[subprocess.Popen] = []  # type: ignore[type-arg]
    worker_log = tmp_path / "worker.log"
    try:
        assert ntbcare(env, tmp_path, "init").returncode == 0
        server = Server(["serve", "--host", "127.0.0.1", "--workers", "2"], env, tmp_path)
        procs.append(server.proc)
        with worker_log.open("w") as log_file:
            procs.append(subprocess.Popen([sys.executable, "-m", "ntbcare.cli", "worker", "--name", "m1"], env=env,
                                          cwd=tmp_path, start_new_session=True, stdout=log_file, stderr=log_file))
        base = server.base_url()
        wait_ready(base, procs[0])
        count = 20
        for n in range(count):
            value = {"from": {"id": f"74{n:014d}", "name": f"Warga {n}"}, "message": f"Jalan berlubang di Praya {n}",
                     "post_id": "104000000000001_555", "comment_id": f"555_{800000 + n}",
                     "parent_id": "104000000000001_555", "created_time": 1767225598 + n, "item": "comment",
                     "verb": "add"}
            body = json.dumps({"object": "page", "entry": [{"id": "104000000000001", "time": 1767225600,
                                                            "changes": [{"field": "feed", "value": value}]}]})
            assert post(base, body.encode()) == 200
        assert len(wait_for_tickets(env, tmp_path, count, timeout=240)) == count

        deadline = time.monotonic() + 240
        while True:
            samples = scrape(base)
            routed = samples.get(("ntbcare_routing_confidence_count", ()), 0)
            if routed >= count or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        files = sorted(f.name for f in metrics_dir.iterdir())
        # counted by two gunicorn processes
        assert samples[("ntbcare_deliveries_received_total", ())] == count, (files, "".join(server.lines[-30:]))
        assert samples[("ntbcare_deliveries_processed_total", ())] == count
        assert routed == count  # observed inside the worker's work-horses, one per job
        assert samples[("ntbcare_queue_depth", ())] == 0
        assert metrics_dir.stat().st_mode & 0o777 == 0o700
        assert 0 < len(files) < 12, files  # horses share their worker's files
    finally:
        for proc in procs:
            stop(proc)
        drop_postgres_database(db_url)
        Redis.from_url(rurl).flushdb()
    lines = [line for line in worker_log.read_text().splitlines() if line.strip()]
    assert lines, "the worker logged nothing"
    parsed = [json.loads(line) for line in lines]
    assert any("job_id" in entry and "delivery_ids" in entry for entry in parsed)
