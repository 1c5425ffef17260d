"""`ntbcare serve` binds 127.0.0.1 unless told otherwise (only a reverse proxy on the same machine reaches it) and
runs one worker process unless told otherwise."""

from __future__ import annotations

import os

import pytest

from tests.conftest import BASE_ENV
from tests.test_e2e_processes import Server, ntbcare, stop, wait_ready

pytestmark = pytest.mark.slow


def listening_sockets(port: int) -> set[str]:
    """Local addresses (hex, as the kernel lists them) of the sockets listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table, encoding="ascii") as rows:
            for row in list(rows)[1:]:
                local, state = row.split()[1], row.split()[3]
                address, hex_port = local.rsplit(":", 1)
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.add(address)
    return found


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as listing:
        return [int(child) for child in listing.read().split()]


def test_serve_listens_on_loopback_only_by_default(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **BASE_ENV,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'ntbcare.db'}"}
    assert ntbcare(env, tmp_path, "init").returncode == 0
    server = Server(["serve"], env, tmp_path)  # no --host
    try:
        base = server.base_url()  # Server reads gunicorn's "Listening at: http://127.0.0.1:<port>"
        wait_ready(base, server.proc)
        assert server.port is not None
        assert listening_sockets(server.port) == {"0100007F"}  # 127.0.0.1, not 0.0.0.0 (00000000)
        assert len(children(server.proc.pid)) == 1  # one worker process unless --workers says otherwise
    finally:
        stop(server.proc)
