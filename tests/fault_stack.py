"""The scaled-out deployment on loopback, with the knobs a fault run turns: `ntbcare serve` and two
`ntbcare worker` processes on PostgreSQL (reached through a TCP proxy that can refuse connections) and a
private Redis (restartable, no persistence), the Graph API stand-in and aiosmtpd.

Used by tests/test_faults_*.py. Every scenario ends with exact counts taken from the stand-ins (what Facebook
and the agencies really received), not from the project's own bookkeeping.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, func, update
from sqlalchemy import select as sql_select
from sqlalchemy.engine import Engine

from ntbcare.core.models import Agency, OutboundMail, Reply, Ticket
from tests.conftest import APP_SECRET, BASE_ENV, PAGE_ID, drop_postgres_database, fresh_postgres_database, sign
from tests.graph_standin import GraphStandIn
from tests.servers import LOOPBACK, RecordingHandler, free_port, serve_wsgi, smtp_server

LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")
POST_ID = f"{PAGE_ID}_777000000000001"
AGENCY_EMAIL = "pengaduan@pln-ntb.test"
# One routing model for every fault run on this machine (trained by the first `ntbcare init`, signed with the
# test SECRET_KEY): training it again per run costs minutes on a loaded 2-core box.
MODEL_PATH = str(Path(tempfile.gettempdir()) / "ntbcare-fault-model" / "routing-model.pkl")
COMPLAINT = ("Listrik padam sejak pagi di Kelurahan Pagesangan Mataram nomor {n}, token sudah diisi tetap mati. "
             "Tolong PLN")


# -- the pieces ----------------------------------------------------------------------------------------------


class TcpProxy:
    """A loopback TCP proxy in front of PostgreSQL. ``refuse()`` closes the listening socket and every open
    connection (the database went away: connecting is refused); ``accept()`` listens again on the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.accept()

    def accept(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, self.port))
        listener.listen(256)
        self._listener = listener
        threading.Thread(target=self._serve, args=(listener,), daemon=True, name="pg-proxy").start()

    def refuse(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, set()
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for conn in conns:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def close(self) -> None:
        self.refuse()

    def _serve(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    server.close()
                    return
                self._conns.update((client, server))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 1.0)
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    (b if source is a else a).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in (a, b):
                with suppress(OSError):
                    sock.close()
            with self._lock:
                self._conns.discard(a)
                self._conns.discard(b)


class PrivateRedis:
    """A redis-server of this test alone, without persistence, restartable on its port."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.dir = tmp
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", LOOPBACK, "--save", "",
                                      "--appendonly", "no", "--dir", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with suppress(OSError), socket.create_connection((LOOPBACK, self.port), timeout=0.2):
                return
            time.sleep(0.05)
        raise AssertionError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()


class Process:
    """An `ntbcare` command in its own process group, its stderr kept (and read, so it never blocks)."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.args = args
        self.proc = subprocess.Popen([sys.executable, "-m", "ntbcare.cli", *args], env=env, cwd=cwd,
                                     start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: list[str] = []
        self.port: int | None = None
        self._bound = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            match = LISTENING.search(line)
            if match and self.port is None:
                self.port = int(match.group(1))
                self._bound.set()
        self._bound.set()

    def base_url(self, timeout: float = 90) -> str:
        assert self._bound.wait(timeout) and self.port, "".join(self.lines[-30:]) or "no port bound"
        return f"http://{LOOPBACK}:{self.port}"

    def kill(self) -> None:
        """SIGKILL the whole group: the worker, its work-horse and its sweeper die at once, mid-job."""
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


# -- the deployment ------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the outside world saw, per comment."""

    tickets: int
    forwards: Counter[str]
    public: Counter[str]
    private: Counter[str | None]
    mails_sent: int
    replies: Counter[str] = field(default_factory=Counter)


class Stack:
    """The scaled-out shape on loopback; ``comments(n)`` posts a burst, ``outcome()`` counts what happened."""

    def __init__(self, tmp: Path, *, smtp_port: int, graph_url: str, graph: GraphStandIn, handler: RecordingHandler,
                 redis: PrivateRedis, proxy: TcpProxy, pg_url: str) -> None:
        self.tmp, self.graph, self.handler, self.redis, self.proxy = tmp, graph, handler, redis, proxy
        self.pg_url = pg_url
        proxied = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        self.env = {"PATH": os.environ["PATH"], "HOME": str(tmp), **BASE_ENV, "DATABASE_URL": proxied,
                    "REDIS_URL": redis.url, "LOG_LEVEL": "WARNING", "GRAPH_API_BASE_URL": graph_url,
                    "FB_PAGE_ACCESS_TOKEN": graph.access_token, "SMTP_URL": f"smtp://{LOOPBACK}:{smtp_port}",
                    "SWEEP_INTERVAL": "2", "REDISPATCH_AFTER": "8", "ACK_COMMENT": "true",
                    "HIDE_PII_COMMENTS": "false", "METRICS_DIR": str(tmp / "metrics"),
                    "ROUTING_MODEL_PATH": MODEL_PATH}
        self.engine: Engine = create_engine(pg_url, pool_pre_ping=True)
        self.server: Process | None = None
        self.workers: list[Process] = []
        self.base = ""
        self.started_at = time.monotonic()

    def init(self) -> None:
        done = subprocess.run([sys.executable, "-m", "ntbcare.cli", "init"], env=self.env, cwd=self.tmp,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
        with self.engine.begin() as conn:  # every agency reachable by e-mail, so each routed ticket is mailed
            conn.execute(update(Agency).values(emails=[AGENCY_EMAIL]))

    def start_server(self) -> None:
        self.server = Process(["serve", "--host", LOOPBACK, "--port", "0", "--workers", "2"],
                              {**self.env, "LOG_LEVEL": "INFO"}, self.tmp)
        self.base = self.server.base_url()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with suppress(requests.RequestException):
                if requests.get(self.base + "/healthz", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        self.graph.echo_to(self.base + "/webhook", APP_SECRET)

    def start_worker(self, name: str) -> Process:
        worker = Process(["worker", "--name", name], self.env, self.tmp)
        self.workers.append(worker)
        return worker

    def close(self) -> None:
        for proc in [*self.workers, *([self.server] if self.server else [])]:
            proc.stop()
        self.engine.dispose()

    # -- traffic --

    @staticmethod
    def comment_body(n: int) -> bytes:
        value = {"from": {"id": f"75{n:014d}", "name": f"Warga {n}"}, "message": COMPLAINT.format(n=n),
                 "post_id": POST_ID, "comment_id": comment_id(n), "parent_id": POST_ID,
                 "created_time": int(time.time()), "item": "comment", "verb": "add"}
        return json.dumps({"object": "page", "entry": [{"id": PAGE_ID, "time": int(time.time()),
                                                        "changes": [{"field": "feed", "value": value}]}]}).encode()

    def post(self, body: bytes, timeout: float = 5) -> int:
        return requests.post(self.base + "/webhook", data=body, timeout=timeout, headers={
            "X-Hub-Signature-256": sign(body), "Content-Type": "application/json"}).status_code

    def burst(self, numbers: range, *, redeliver_every: int = 10) -> list[int]:
        """Post each comment (retrying what is refused, as Facebook does); every ``redeliver_every``-th twice."""
        statuses = []
        for n in numbers:
            for _ in range(2 if n % redeliver_every == 0 else 1):
                statuses.append(self.post_until_accepted(self.comment_body(n)))
        return statuses

    def post_until_accepted(self, body: bytes, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        while True:
            try:
                status = self.post(body)
            except requests.RequestException:
                status = 0
            if status == 200 or time.monotonic() > deadline:
                return status
            time.sleep(0.5)

    # -- counting --

    def db_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            tickets = conn.scalar(sql_select(func.count()).select_from(Ticket)) or 0
            open_replies = conn.scalar(sql_select(func.count()).select_from(Reply)
                                       .where(Reply.status != "sent")) or 0
            replies = conn.scalar(sql_select(func.count()).select_from(Reply)) or 0
            forward = OutboundMail.kind == "forward"
            unsent_mails = conn.scalar(sql_select(func.count()).select_from(OutboundMail)
                                       .where(forward, OutboundMail.sent_at.is_(None))) or 0
            mails = conn.scalar(sql_select(func.count()).select_from(OutboundMail).where(forward)) or 0
        return {"tickets": tickets, "replies": replies, "open_replies": open_replies, "mails": mails,
                "unsent_mails": unsent_mails}

    def settled(self, n: int) -> bool:
        """n tickets, each owed its forward mail and two replies, all sent, and the stand-ins saw as much."""
        try:
            counts = self.db_counts()
        except Exception:  # the proxy may be refusing; the test's own engine goes direct, but be safe
            return False
        outcome = self.outcome()
        return (counts["tickets"] == n and counts["mails"] == n and counts["unsent_mails"] == 0
                and counts["replies"] == 2 * n and counts["open_replies"] == 0
                and sum(outcome.forwards.values()) >= n and sum(outcome.public.values()) >= n
                and sum(outcome.private.values()) >= n)

    def wait_settled(self, n: int, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        last_note = time.monotonic()
        while not self.settled(n):
            if time.monotonic() - last_note > 15:
                say(f"  {time.monotonic() - self.started_at:.0f}s {self.db_counts()}")
                last_note = time.monotonic()
            if time.monotonic() > deadline:
                raise AssertionError(f"not settled after {timeout} s: {self.db_counts()}; "
                                     f"graph calls {len(self.graph.calls)}, mails {len(self.handler.received)}")
            time.sleep(1)
        time.sleep(3)  # anything sent twice would show up now
        return time.monotonic() - self.started_at

    def outcome(self) -> Outcome:
        forwards: Counter[str] = Counter()
        for _, content in list(self.handler.received):
            subject = str(message_from_bytes(content, policy=default_policy)["Subject"] or "")
            if "Laporan baru" in subject:
                forwards.update(re.findall(r"NTB-\d{4}-\d{6}", subject)[:1])
        public = Counter({target: len(items) for target, items in list(self.graph.comments.items())})
        private = Counter((m.get("recipient") or {}).get("comment_id") for m in list(self.graph.messages))
        with self.engine.connect() as conn:
            tickets = conn.scalar(sql_select(func.count()).select_from(Ticket)) or 0
            statuses = Counter(dict(conn.execute(sql_select(Reply.status, func.count()).group_by(Reply.status))
                                    .all()))
        return Outcome(tickets=tickets, forwards=forwards, public=public, private=private,
                       mails_sent=sum(forwards.values()), replies=statuses)

    def assert_exactly_once(self, n: int) -> Outcome:
        """Per comment: one ticket, one forward e-mail, one public acknowledgement, one private reply."""
        outcome = self.outcome()
        expected = {comment_id(i) for i in range(n)}
        with self.engine.connect() as conn:
            comments = Counter(conn.scalars(sql_select(Ticket.comment_id)).all())
            numbers = set(conn.scalars(sql_select(Ticket.number)).all())
        assert outcome.tickets == n and set(comments) == expected and set(comments.values()) == {1}
        assert set(outcome.forwards) == numbers and set(outcome.forwards.values()) == {1}, outcome.forwards
        assert outcome.mails_sent == n
        assert set(outcome.public) == expected and set(outcome.public.values()) == {1}, outcome.public
        assert set(outcome.private) == expected and set(outcome.private.values()) == {1}, outcome.private
        assert outcome.replies == Counter({"sent": 2 * n})
        return outcome


def say(line: str) -> None:
    """Progress and results on the terminal (pytest -s), for the figures in docs/reliability.md."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def comment_id(n: int) -> str:
    return f"777000000000001_{800000000000 + n}"


@contextmanager
def stack(tmp: Path, *, smtp_handler: RecordingHandler | None = None, smtp_sock: socket.socket | None = None,
          graph: GraphStandIn | None = None, workers: int = 2, start: bool = True) -> Iterator[Stack]:
    """The whole deployment, torn down afterwards (database dropped, private Redis stopped)."""
    handler = smtp_handler or RecordingHandler()
    graph = graph or GraphStandIn(page_id=PAGE_ID)
    pg_url = fresh_postgres_database()
    proxy = TcpProxy(("127.0.0.1", 5432))
    redis = PrivateRedis(tmp)
    deployment: Stack | None = None
    try:
        with serve_wsgi(graph) as graph_url, smtp_context(handler, smtp_sock) as smtp_port:
            deployment = Stack(tmp, smtp_port=smtp_port, graph_url=graph_url, graph=graph, handler=handler,
                               redis=redis, proxy=proxy, pg_url=pg_url)
            deployment.init()
            if start:
                deployment.start_server()
                for index in range(workers):
                    deployment.start_worker(f"fault-w{index + 1}")
            deployment.started_at = time.monotonic()
            yield deployment
    finally:
        if deployment is not None:
            deployment.close()
        redis.stop()
        proxy.close()
        drop_postgres_database(pg_url)


@contextmanager
def smtp_context(handler: RecordingHandler, sock: socket.socket | None) -> Iterator[int]:
    """aiosmtpd now, or (with ``sock``) only a reserved port that refuses connections until the test starts it."""
    if sock is None:
        with smtp_server(handler) as port:
            yield port
    else:
        yield sock.getsockname()[1]


def report(name: str, n: int, seconds: float, outcome: Outcome, **extra: Any) -> None:
    """One line per scenario, for docs/reliability.md."""
    say(f"\nFAULT {name}: comments={n} tickets={outcome.tickets} forwards={sum(outcome.forwards.values())} "
          f"public={sum(outcome.public.values())} private={sum(outcome.private.values())} "
          f"settled_in={seconds:.0f}s " + " ".join(f"{k}={v}" for k, v in extra.items()))
