"""`GET /readyz` of a process that runs its own queue (no REDIS_URL): ready while the embedded worker threads and
the sweeper run, 503 naming the check once either has died, so a supervisor restarts the process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from ntbcare.app import create_app
from ntbcare.core.db import Database
from ntbcare.core.migrate import upgrade
from ntbcare.pipeline.runtime import Runtime
from tests.conftest import make_settings
from tests.servers import eventually


@pytest.fixture
def web_mode(sqlite_url: str) -> Iterator[tuple[FlaskClient, Runtime]]:
    """The app as `ntbcare run` builds it on SQLite without Redis: embedded workers and a sweeper."""
    db = Database(sqlite_url)
    upgrade(db.engine)
    runtime = Runtime.build(make_settings(DATABASE_URL=sqlite_url), mode="web", db=db)
    try:
        yield create_app(runtime=runtime).test_client(), runtime
    finally:
        runtime.close()


def readiness(client: FlaskClient) -> tuple[int, dict]:
    response = client.get("/readyz")
    return response.status_code, response.get_json()


def test_ready_while_the_embedded_workers_and_the_sweeper_run(web_mode):
    client, _ = web_mode
    assert readiness(client) == (200, {"status": "ok", "failing": [],
                                       "checks": {"database": True, "queue": True, "sweeper": True}})


def test_not_ready_once_the_sweeper_has_died(web_mode):
    client, runtime = web_mode
    assert readiness(client)[0] == 200
    runtime.sweeper.stop()
    status, body = eventually(lambda: (answer := readiness(client))[0] == 503 and answer,
                              what="/readyz to notice the sweeper is gone")
    assert body == {"status": "unavailable", "failing": ["sweeper"],
                    "checks": {"database": True, "queue": True, "sweeper": False}}


def test_not_ready_once_the_embedded_workers_have_died(web_mode):
    client, runtime = web_mode
    assert readiness(client)[0] == 200
    runtime.dispatcher.close()
    status, body = eventually(lambda: (answer := readiness(client))[0] == 503 and answer,
                              what="/readyz to notice the worker threads are gone")
    assert body == {"status": "unavailable", "failing": ["queue"],
                    "checks": {"database": True, "queue": False, "sweeper": True}}
