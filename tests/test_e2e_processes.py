"""The real commands as a deployer runs them: `ntbcare run` alone, and `serve` + several `worker`s."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import BASE_ENV, drop_postgres_database, fixture_bytes, fresh_postgres_database, redis_url, sign

pytestmark = pytest.mark.slow


LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")


class Server:
    """A server command started on port 0: the kernel picks a free port when gunicorn binds, and the port is
    read back from gunicorn's "Listening at" line, so no other process can take it in between."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "ntbcare.cli", *args, "--port", "0"],
                                     env={**env, "LOG_LEVEL": "INFO"}, cwd=cwd, start_new_session=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.port: int | None = None
        self.lines: list[str] = []
        self._bound = threading.Event()
        self._reader = threading.Thread(target=self._read, name="server-stderr", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:  # read to the end, so a chatty server never blocks on a full pipe
            self.lines.append(line)
            match = LISTENING.search(line)
            if match and self.port is None:
                self.port = int(match.group(1))
                self._bound.set()
        self._bound.set()

    def base_url(self, timeout: float = 90) -> str:
        assert self._bound.wait(timeout) and self.port is not None, "".join(self.lines[-20:]) or "no port bound"
        return f"http://127.0.0.1:{self.port}"


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited"
        try:
            if requests.get(url + "/readyz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become ready")


def ntbcare(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ntbcare.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def wait_for_tickets(env: dict[str, str], cwd: Path, n: int, timeout: float = 60) -> list[dict]:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while True:
        result = ntbcare(env, cwd, "tickets", "list", "--limit", "10000", "--json")
        tickets = json.loads(result.stdout) if result.returncode == 0 else []
        if len(tickets) >= n or time.monotonic() > deadline:
            return tickets
        time.sleep(0.5)


def post(base: str, body: bytes) -> int:
    return requests.post(base + "/webhook", data=body, timeout=5,
                         headers={"X-Hub-Signature-256": sign(body), "Content-Type": "application/json"}).status_code


def stop(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_ntbcare_run_on_embedded_defaults(tmp_path):
    """One command, SQLite and the in-process queue: signed deliveries become tickets."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **BASE_ENV}
    server = Server(["run"], env, tmp_path)
    proc = server.proc
    try:
        base = server.base_url()
        wait_ready(base, proc)
        assert (tmp_path / "ntbcare.db").exists()
        challenge = requests.get(base + "/webhook", timeout=5, params={
            "hub.mode": "subscribe", "hub.verify_token": BASE_ENV["FB_VERIFY_TOKEN"], "hub.challenge": "42"})
        assert challenge.text == "42"
        for name in ("feed__comment__add", "feed__comment__add", "feed__status__add", "messaging__message__emoji"):
            assert post(base, fixture_bytes(name)) == 200
        assert requests.post(base + "/webhook", data=b"{}", timeout=5,
                             headers={"X-Hub-Signature-256": "sha256=" + "0" * 64}).status_code == 403
        tickets = wait_for_tickets(env, tmp_path, 3)
        assert sorted(t["channel"] for t in tickets) == ["comment", "messenger", "post"]
    finally:
        stop(proc)


def test_serve_with_two_workers_on_postgres_and_redis(tmp_path):
    """Production shape: gunicorn web processes and two RQ workers sharing PostgreSQL and Redis."""
    from redis import Redis

    rurl = redis_url()
    Redis.from_url(rurl).flushdb()
    db_url = fresh_postgres_database()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **BASE_ENV, "DATABASE_URL": db_url,
           "REDIS_URL": rurl, "LOG_LEVEL": "WARNING"}
    procs: list[subprocess.Popen] = []  # type: ignore[type-arg]
    try:
        assert ntbcare(env, tmp_path, "init").returncode == 0
        server = Server(["serve", "--host", "127.0.0.1", "--workers", "2"], env, tmp_path)
        procs.append(server.proc)
        for name in ("w1", "w2"):
            procs.append(subprocess.Popen([sys.executable, "-m", "ntbcare.cli", "worker", "--name", name], env=env,
                                          cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        base = server.base_url()
        wait_ready(base, procs[0])
        bodies = []
        for n in range(120):
            value = {"from": {"id": f"74{n:014d}", "name": f"Warga {n}"}, "message": f"Sampah menumpuk {n}",
                     "post_id": "104000000000001_555", "comment_id": f"555_{700000 + n}",
                     "parent_id": "104000000000001_555", "created_time": 1767225598 + n, "item": "comment",
                     "verb": "add"}
            bodies.append(json.dumps({"object": "page", "entry": [{"id": "104000000000001", "time": 1767225600,
                                      "changes": [{"field": "feed", "value": value}]}]}).encode())
        for body in bodies + bodies[:30]:  # 30 redeliveries
            assert post(base, body) == 200
        tickets = wait_for_tickets(env, tmp_path, 120)
        assert len(tickets) == 120
        assert len({t["facebook"]["comment_id"] for t in tickets}) == 120
        assert len({t["number"] for t in tickets}) == 120
    finally:
        for proc in procs:
            stop(proc)
        drop_postgres_database(db_url)
        Redis.from_url(rurl).flushdb()
