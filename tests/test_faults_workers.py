"""Fault runs of the scaled-out shape, workers side: two workers racing on one backlog, and a worker SIGKILLed
(with its work-horse and its sweeper) in the middle of a burst. Each ends with exact counts per comment: one
ticket, one forward e-mail, one public acknowledgement, one private reply."""

from __future__ import annotations

import threading
import time

import pytest

from tests.fault_stack import report, stack

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(900)]
N = 100


def test_two_workers_racing_on_one_backlog(tmp_path):
    n = N
    with stack(tmp_path, workers=0) as deployment:
        statuses = deployment.burst(range(n))  # stored and queued; nobody processes them yet
        assert set(statuses) == {200}
        assert deployment.db_counts()["tickets"] == 0
        for name in ("race-a", "race-b"):  # both start on the same backlog at once
            deployment.start_worker(name)
        seconds = deployment.wait_settled(n, timeout=240)
        outcome = deployment.assert_exactly_once(n)
    report("two-workers-one-backlog", n, seconds, outcome)


def test_a_worker_killed_mid_burst(tmp_path):
    n = N
    with stack(tmp_path) as deployment:
        victim = deployment.workers[0]
        poster = threading.Thread(target=deployment.burst, args=(range(n),))
        poster.start()
        deadline = time.monotonic() + 60
        while deployment.db_counts()["tickets"] < n // 4 and time.monotonic() < deadline:
            time.sleep(0.2)
        victim.kill()  # the worker, its work-horse mid-job and its sweeper
        killed_at = deployment.db_counts()["tickets"]
        poster.join(timeout=180)
        seconds = deployment.wait_settled(n, timeout=420)
        outcome = deployment.assert_exactly_once(n)
    report("worker-sigkill-mid-burst", n, seconds, outcome, tickets_when_killed=killed_at)
