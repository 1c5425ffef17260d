"""AGENCY_LINK_MAX_AGE_DAYS decides how long the link in an agency's e-mail opens the ticket: past it, the page
answers 410 and explains how to get a new link; within it, the ticket opens. Links here are genuinely old
(signed in the past), not read with a shifted clock."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner

from ntbcare.core.db import Database
from ntbcare.core.migrate import upgrade
from ntbcare.pipeline.runtime import Runtime
from tests.conftest import RecordingDispatcher, make_settings
from tests.test_agency_page import OPERATOR, build_agency_app, parse, seed, snapshot, token_for

DAY = 86400


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    upgrade(database.engine)
    yield database
    database.dispose()


def agency_page(db: Database, sqlite_url: str, **env: str) -> FlaskClient:
    settings = make_settings(DATABASE_URL=sqlite_url, OPERATOR_EMAILS=OPERATOR, **env)
    return build_agency_app(Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher())).test_client()


def link_signed_days_ago(monkeypatch: pytest.MonkeyPatch, ticket_id: int, days: float) -> str:
    signed_at = int(time.time() - days * DAY)
    with monkeypatch.context() as clock:
        clock.setattr(TimestampSigner, "get_timestamp", lambda self: signed_at)
        return token_for(ticket_id)


@pytest.mark.parametrize(("env", "days_old", "opens"), [
    ({"AGENCY_LINK_MAX_AGE_DAYS": "2"}, 3, False),
    ({"AGENCY_LINK_MAX_AGE_DAYS": "2"}, 1, True),
    ({}, 3, True),  # the default, 14 days
    ({}, 15, False),
], ids=["2-days-limit-3-days-old", "2-days-limit-1-day-old", "default-3-days-old", "default-15-days-old"])
def test_link_age_limit(sqlite_db, sqlite_url, monkeypatch, env, days_old, opens):
    ticket_id = seed(sqlite_db)
    web = agency_page(sqlite_db, sqlite_url, **env)
    token = link_signed_days_ago(monkeypatch, ticket_id, days_old)
    before = snapshot(sqlite_db)
    response = web.get(f"/a/{token}")
    text = parse(response.data).text
    if opens:
        assert response.status_code == 200
        assert "NTB-2026-000001" in text and "Menunggu jawaban instansi" in text
    else:
        assert response.status_code == 410
        assert "Tautan sudah kedaluwarsa" in text and "Cara mendapatkan tautan baru" in text and OPERATOR in text
        assert "NTB-2026-000001" not in text
    assert snapshot(sqlite_db) == before
