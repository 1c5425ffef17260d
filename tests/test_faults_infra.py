"""Fault runs of the scaled-out shape, infrastructure side: Redis restarted without persistence mid-burst, the
database refusing connections for a while (the webhook answers 503 within a second, then recovers), the SMTP
server down then up. Each ends with exact counts per comment: one ticket, one forward e-mail, one public
acknowledgement, one private reply."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.fault_stack import Stack, report, stack
from tests.servers import RecordingHandler, reserved_port, smtp_server

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis,
              pytest.mark.timeout(900)]
N = 100


def wait_tickets(deployment: Stack, at_least: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = deployment.db_counts()["tickets"]
        if count >= at_least:
            return count
        time.sleep(0.2)
    raise AssertionError(f"fewer than {at_least} tickets after {timeout} s")


def test_redis_restarted_without_persistence_mid_burst(tmp_path):
    with stack(tmp_path) as deployment:
        poster = threading.Thread(target=deployment.burst, args=(range(N),))
        poster.start()
        at_restart = wait_tickets(deployment, N // 4)
        deployment.redis.restart()  # every queued job, started registry and retry is gone
        poster.join(timeout=300)
        seconds = deployment.wait_settled(N, timeout=480)
        outcome = deployment.assert_exactly_once(N)
        alive = [w.proc.poll() is None for w in deployment.workers]
    assert alive == [True, True], "a worker exited when Redis went away"
    report("redis-restart-mid-burst", N, seconds, outcome, tickets_at_restart=at_restart)


def test_database_refusing_connections_then_recovering(tmp_path):
    with stack(tmp_path) as deployment:
        poster = threading.Thread(target=deployment.burst, args=(range(N),))
        poster.start()
        wait_tickets(deployment, N // 4)
        deployment.proxy.refuse()
        refused_at = time.monotonic()
        answers = []
        for n in range(N, N + 5):  # probes during the outage: Facebook will retry them
            started = time.monotonic()
            try:
                status = deployment.post(Stack.comment_body(n), timeout=10)
            except requests.RequestException:
                status = 0
            answers.append((status, time.monotonic() - started))
            time.sleep(1)
        time.sleep(max(0.0, 8 - (time.monotonic() - refused_at)))
        deployment.proxy.accept()
        for n in range(N, N + 5):  # Facebook's retries of the refused deliveries
            assert deployment.post_until_accepted(Stack.comment_body(n)) == 200
        poster.join(timeout=300)
        seconds = deployment.wait_settled(N + 5, timeout=480)
        outcome = deployment.assert_exactly_once(N + 5)
    assert [status for status, _ in answers] == [503] * 5
    slowest = max(elapsed for _, elapsed in answers)
    assert slowest < 1.0, answers
    report("database-refusing-8s", N + 5, seconds, outcome, slowest_503=f"{slowest * 1000:.0f}ms")


def test_smtp_down_then_up(tmp_path):
    handler = RecordingHandler()
    with reserved_port() as sock, stack(tmp_path, smtp_handler=handler, smtp_sock=sock) as deployment:
        assert set(deployment.burst(range(N))) == {200}
        deadline = time.monotonic() + 240
        while deployment.db_counts()["mails"] < N and time.monotonic() < deadline:
            time.sleep(1)  # every ticket routed, its forward e-mail owed and failing
        down = deployment.db_counts()
        assert down["mails"] == N and down["unsent_mails"] == N and handler.received == []
        with smtp_server(handler, sock=sock):
            seconds = deployment.wait_settled(N, timeout=420)
            outcome = deployment.assert_exactly_once(N)
    report("smtp-down-then-up", N, seconds, outcome)
