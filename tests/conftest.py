"""Shared fixtures: settings, real databases (SQLite and PostgreSQL), real Redis, signed requests.

PostgreSQL and Redis tests skip with a reason on a developer machine without those services, and fail
instead of skipping when CI=true (CI starts them, so a skip there would hide a broken setup).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ntbcare.core.db import Database
from ntbcare.core.migrate import upgrade
from ntbcare.core.settings import Settings
from ntbcare.pipeline.dispatch import InlineDispatcher
from ntbcare.pipeline.runtime import Runtime

FIXTURES = Path(__file__).parent / "fixtures"
PAGE_ID = "104000000000001"
APP_SECRET = "test-app-secret-0123456789abcdef"  # 32 characters, as Facebook issues them
PG_URL = os.environ.get("PG_TEST_URL", "postgresql://127.0.0.1:5432/test")
REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")

# One routing model per test run, trained from the bundled seed on first use and shared with subprocesses.
MODEL_PATH = str(Path(tempfile.mkdtemp(prefix="ntbcare-test-model-")) / "routing-model.pkl")

# Attachments a test run keeps land in a private temporary folder, never in the checkout.
MEDIA_DIR = str(Path(tempfile.mkdtemp(prefix="ntbcare-test-media-")) / "media")

BASE_ENV = {
    "FB_APP_SECRET": APP_SECRET,
    "FB_VERIFY_TOKEN": "test-verify-token",
    "SECRET_KEY": "test-secret-key-signs-agency-links-0123",  # 32 bytes or more, as production needs
    "FB_PAGE_ID": PAGE_ID,
    "PUBLIC_BASE_URL": "http://ntbcare.test",
    "ROUTING_MODEL_PATH": MODEL_PATH,
    "MEDIA_DIR": MEDIA_DIR,
}


def make_settings(**overrides: str) -> Settings:
    return Settings.from_env({**BASE_ENV, **overrides})


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def service_unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI must provide it: see .ci/run)")
    pytest.skip(reason)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def postgres_url() -> str:
    if not _port_open("127.0.0.1", 5432) and "127.0.0.1:5432" in PG_URL:
        service_unavailable("PostgreSQL is not running on 127.0.0.1:5432")
    return PG_URL


def redis_url() -> str:
    if not _port_open("127.0.0.1", 6379) and "127.0.0.1:6379" in REDIS_URL:
        service_unavailable("Redis is not running on 127.0.0.1:6379")
    return REDIS_URL


def fresh_postgres_database() -> str:
    """A new empty database per test, dropped afterwards by the caller."""
    import psycopg

    base = postgres_url()
    name = f"ntbcare_test_{uuid.uuid4().hex[:12]}"
    conninfo = base.replace("postgresql://", "postgresql://", 1)
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + "/" + name


def drop_postgres_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url(), autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def _no_real_cdn(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches Facebook's CDN: the attachment downloader's system resolver answers no name here, so a
    fixture's photo URL stays a transient failure. Tests that download give their fetcher a resolver and the
    loopback stand-in of tests/cdn_standin.py."""

    def no_name(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, f"tests resolve no real names ({host})")

    monkeypatch.setattr("ntbcare.core.cdn.system_resolve", no_name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ntbcare.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test using this runs twice: on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ntbcare.db'}"
        return
    url = fresh_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    upgrade(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def pg_db() -> Iterator[Database]:
    """A fresh migrated PostgreSQL database alone: for what only a server with concurrent writers can show."""
    url = fresh_postgres_database()
    database = Database(url)
    upgrade(database.engine)
    try:
        yield database
    finally:
        database.dispose()
        drop_postgres_database(url)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(DATABASE_URL=database_url)


class RecordingDispatcher:
    """Remembers what was dispatched; tests process explicitly with :func:`drain`."""

    def __init__(self) -> None:
        self.dispatched: list[int] = []

    def dispatch(self, ids: list[int]) -> None:
        self.dispatched.extend(ids)

    def healthy(self) -> bool:
        return True

    def close(self) -> None:
        return None


def drain(rt: Runtime, *, route: bool = False) -> list[int]:
    """Process every pending delivery now, as a worker would (routing the new tickets only with ``route``)."""
    from sqlalchemy import select

    from ingest.processing import process_batch
    from ntbcare.core.models import Delivery, DeliveryStatus

    with rt.db.session() as session:
        ids = list(session.scalars(select(Delivery.id).where(Delivery.status == DeliveryStatus.PENDING)))

    def ingest_only(batch: list[int]) -> None:
        process_batch(rt.db, batch, page_id=rt.settings.fb_page_id, max_attempts=rt.settings.max_delivery_attempts)

    InlineDispatcher(rt.process if route else ingest_only, batch_size=rt.settings.ingest_batch_size).dispatch(ids)
    return ids


@pytest.fixture
def runtime(settings: Settings, db: Database) -> Iterator[Runtime]:
    rt = Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher())
    yield rt
    rt.dispatcher.close()


@pytest.fixture
def app(runtime: Runtime):  # type: ignore[no-untyped-def]
    from ntbcare.app import create_app

    return create_app(runtime=runtime)


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


class Poster:
    """Posts signed webhook bodies like Facebook does."""

    def __init__(self, client) -> None:  # type: ignore[no-untyped-def]
        self.client = client

    def __call__(self, body: bytes | dict | str, *, secret: str = APP_SECRET, headers: dict | None = None):  # type: ignore[no-untyped-def]
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = fixture_bytes(body)
        all_headers = {"X-Hub-Signature-256": sign(body, secret), "Content-Type": "application/json"}
        all_headers.update(headers or {})
        return self.client.post("/webhook", data=body, headers=all_headers)


@pytest.fixture
def post(client) -> Poster:  # type: ignore[no-untyped-def]
    return Poster(client)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Fault-injection runs take minutes each: CI runs them (CI=true), a quick local pytest skips them unless
    RUN_FAULTS=1 asks for them."""
    if os.environ.get("CI", "").lower() == "true" or os.environ.get("RUN_FAULTS") == "1":
        return
    skip = pytest.mark.skip(reason="fault-injection run: CI runs it; RUN_FAULTS=1 runs it locally")
    for item in items:
        if "faults" in item.keywords:
            item.add_marker(skip)
