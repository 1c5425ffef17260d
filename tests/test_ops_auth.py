"""Signing in to the operator console: the session cookie, timeouts, rotation, logout, throttled failures, CSRF
and GET requests that change nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from ntbcare.app import create_app
from ntbcare.core.models import AuditEntry, Operator, OperatorSession, utcnow
from ntbcare.pipeline import operator_accounts
from ntbcare.pipeline.runtime import Runtime
from ntbcare.web.ops.auth import COOKIE
from tests.conftest import RecordingDispatcher, make_settings, redis_url
from tests.ops_helpers import csrf_token, login, make_operator

PASSWORD = "kata-sandi-ani-1"


@pytest.fixture
def ani(db: Any) -> str:
    make_operator(db, "ani", PASSWORD, name="Ani Lestari")
    return "ani"


def cookie(client: Any) -> str | None:
    found = client.get_cookie(COOKIE, path="/ops")
    return found.value if found is not None else None


def sessions(db: Any) -> list[OperatorSession]:
    with db.session() as session:
        return list(session.scalars(select(OperatorSession).order_by(OperatorSession.id)))


def test_every_console_page_without_a_session_goes_to_the_login_page(client, ani) -> None:  # type: ignore[no-untyped-def]
    for path in ("/ops/", "/ops/overdue", "/ops/operators", "/ops/templates", "/ops/attention/mails"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["Location"].endswith("/ops/login"), path
    posted = client.post("/ops/overdue/remind", data={"csrf_token": csrf_token(client), "agency": "DIKES"})
    assert posted.status_code == 303 and posted.headers["Location"].endswith("/ops/login")


def test_login_starts_a_session_with_a_safe_cookie_and_the_dashboard_names_the_operator(client, db, ani) -> None:  # type: ignore[no-untyped-def]
    response = login(client, "ANI ", PASSWORD)  # usernames are not case-sensitive
    assert response.status_code == 303 and response.headers["Location"].endswith("/ops/")
    set_cookie = response.headers["Set-Cookie"]
    assert f"{COOKIE}=" in set_cookie and "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    assert "Path=/ops" in set_cookie and "Secure" not in set_cookie  # PUBLIC_BASE_URL is http in tests
    page = client.get("/ops/")
    assert page.status_code == 200 and "Ani Lestari" in page.get_data(as_text=True)
    again = client.get("/ops/login")  # signed in already: straight to the dashboard
    assert again.status_code == 303 and again.headers["Location"].endswith("/ops/")
    assert page.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"]
    with db.session() as session:
        assert session.scalar(select(AuditEntry.actor).where(AuditEntry.action == "login")) == "operator:ani"


def test_the_cookie_is_secure_when_the_public_address_is_https(database_url, db, ani) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(DATABASE_URL=database_url, PUBLIC_BASE_URL="https://ntbcare.ntbprov.go.id")
    app = create_app(runtime=Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher()))
    response = login(app.test_client(), "ani", PASSWORD)
    assert response.status_code == 303 and "Secure" in response.headers["Set-Cookie"]


def test_a_wrong_password_or_unknown_name_is_refused_alike(client, ani) -> None:  # type: ignore[no-untyped-def]
    wrong = login(client, "ani", "salah-sekali-123")
    unknown = login(client, "siapa", "salah-sekali-123")
    assert wrong.status_code == unknown.status_code == 401
    assert "Nama pengguna atau kata sandi salah" in wrong.get_data(as_text=True)
    assert cookie(client) is None
    assert client.get("/ops/").status_code == 303


def test_login_rotates_the_session_and_the_csrf_token(client, db, ani) -> None:  # type: ignore[no-untyped-def]
    planted = csrf_token(client)
    login(client, "ani", PASSWORD)
    first = cookie(client)
    login(client, "ani", PASSWORD)  # signing in again (e.g. a second tab) replaces the session
    second = cookie(client)
    assert first and second and first != second
    rows = sessions(db)
    assert len(rows) == 2 and rows[0].ended_at is not None and rows[1].ended_at is None
    client.set_cookie(COOKIE, first, path="/ops")
    assert client.get("/ops/").status_code == 303  # the old token is worth nothing
    client.set_cookie(COOKIE, second, path="/ops")
    assert client.get("/ops/").status_code == 200
    assert csrf_token(client, "/ops/") != planted
    refused = client.post("/ops/logout", data={"csrf_token": planted})
    assert refused.status_code == 400 and client.get("/ops/").status_code == 200


def test_logout_ends_the_session_on_the_server(client, db, ani) -> None:  # type: ignore[no-untyped-def]
    login(client, "ani", PASSWORD)
    token = cookie(client)
    response = client.post("/ops/logout", data={"csrf_token": csrf_token(client, "/ops/")})
    assert response.status_code == 303 and response.headers["Location"].endswith("/ops/login?m=out")
    client.set_cookie(COOKIE, token or "", path="/ops")  # a copied cookie replayed after logout
    assert client.get("/ops/").status_code == 303
    assert all(row.ended_at is not None for row in sessions(db))


def test_a_session_ends_after_the_idle_timeout(client, db, ani, runtime) -> None:  # type: ignore[no-untyped-def]
    login(client, "ani", PASSWORD)
    idle = runtime.settings.ops_idle_minutes
    with db.scope() as session:
        session.execute(update(OperatorSession).values(last_seen_at=utcnow() - timedelta(minutes=idle - 2)))
    assert client.get("/ops/").status_code == 200  # still inside the window: the visit renews it
    assert sessions(db)[0].last_seen_at > utcnow() - timedelta(minutes=1)
    with db.scope() as session:
        session.execute(update(OperatorSession).values(last_seen_at=utcnow() - timedelta(minutes=idle + 1)))
    response = client.get("/ops/")
    assert response.status_code == 303 and response.headers["Location"].endswith("/ops/login?m=expired")
    assert "Sesi Anda sudah berakhir" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_a_session_ends_after_twelve_hours_however_busy(client, db, ani) -> None:  # type: ignore[no-untyped-def]
    login(client, "ani", PASSWORD)
    with db.scope() as session:
        session.execute(update(OperatorSession).values(created_at=utcnow() - timedelta(hours=11, minutes=58)))
    assert client.get("/ops/").status_code == 200
    with db.scope() as session:
        session.execute(update(OperatorSession).values(created_at=utcnow() - timedelta(hours=12, minutes=1)))
    assert client.get("/ops/").status_code == 303


def test_disabling_an_operator_ends_their_session_at_once(client, db, ani) -> None:  # type: ignore[no-untyped-def]
    login(client, "ani", PASSWORD)
    assert client.get("/ops/").status_code == 200
    with db.scope() as session:
        operator_accounts.disable(session, "ani", actor="operator:boss")
    assert client.get("/ops/").status_code == 303
    assert login(client, "ani", PASSWORD).status_code == 401


def test_five_failures_for_one_username_lock_it_for_fifteen_minutes(client, db, ani) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        assert login(client, "ani", "tebakan-salah-99").status_code == 401
    refused = login(client, "ani", PASSWORD)  # even the right password now waits
    assert refused.status_code == 429
    assert 14 * 60 <= int(refused.headers["Retry-After"]) <= 15 * 60
    text = refused.get_data(as_text=True)
    assert "Terlalu banyak percobaan masuk" in text and "Coba lagi dalam 15 menit" in text and "WITA" in text
    assert cookie(client) is None
    make_operator(db, "budi", "kata-sandi-budi-1")
    assert login(client, "budi", "kata-sandi-budi-1").status_code == 303  # other usernames are not locked


def test_twenty_failures_from_one_address_lock_every_username_from_it(app, db, ani) -> None:  # type: ignore[no-untyped-def]
    attacker, colleague = app.test_client(), app.test_client()
    here = {"REMOTE_ADDR": "203.0.113.7"}
    for n in range(20):
        attacker.environ_base.update(here)
        assert login(attacker, f"tebak{n}", "tebakan-salah-99").status_code == 401
    assert login(attacker, "ani", PASSWORD).status_code == 429
    colleague.environ_base.update({"REMOTE_ADDR": "198.51.100.20"})
    assert login(colleague, "ani", PASSWORD).status_code == 303


def test_failed_logins_are_counted_in_redis_across_processes(database_url, db, ani) -> None:  # type: ignore[no-untyped-def]
    import redis

    url = redis_url()
    redis.Redis.from_url(url).flushdb()
    settings = make_settings(DATABASE_URL=database_url, REDIS_URL=url)
    first, second = (create_app(runtime=Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher()))
                     for _ in range(2))
    for _ in range(3):
        assert login(first.test_client(), "ani", "tebakan-salah-99").status_code == 401
    for _ in range(2):
        assert login(second.test_client(), "ani", "tebakan-salah-99").status_code == 401
    assert login(first.test_client(), "ani", PASSWORD).status_code == 429
    redis.Redis.from_url(url).flushdb()


def test_a_form_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(client, db, ani) -> None:  # type: ignore[no-untyped-def]
    make_operator(db, "kepala", "kata-sandi-kepala", role="supervisor")
    login(client, "kepala", "kata-sandi-kepala")
    with db.session() as session:
        audits = session.scalar(select(func.count()).select_from(AuditEntry))
    for data in ({}, {"csrf_token": "not-the-token"}):
        attempts = [
            client.post("/ops/operators/ani/disable", data=data),
            client.post("/ops/operators", data={**data, "username": "baru", "password": "kata-sandi-baru-1"}),
            client.post("/ops/templates/status", data={**data, "text": "Status {number}: {status}"}),
            client.post("/ops/logout", data=data),
        ]
        for response in attempts:
            assert response.status_code == 400
            assert "Formulir kedaluwarsa atau tidak sah" in response.get_data(as_text=True)
    with db.session() as session:
        assert session.scalar(select(Operator.disabled).where(Operator.username == "ani")) is False
        assert session.scalar(select(Operator).where(Operator.username == "baru")) is None
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == audits
    assert client.get("/ops/").status_code == 200  # still signed in
    assert login(client.application.test_client(), "ani", PASSWORD).status_code == 303


def test_get_requests_change_nothing(client, db, ani) -> None:  # type: ignore[no-untyped-def]
    make_operator(db, "kepala", "kata-sandi-kepala", role="supervisor")
    login(client, "kepala", "kata-sandi-kepala")
    with db.session() as session:
        audits = session.scalar(select(func.count()).select_from(AuditEntry))
    for path in ("/ops/logout", "/ops/operators/ani/disable", "/ops/operators/ani/password", "/ops/overdue/remind",
                 "/ops/templates/status/reset"):
        assert client.get(path).status_code == 405, path
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == audits
        assert session.scalar(select(Operator.disabled).where(Operator.username == "ani")) is False
    assert client.get("/ops/").status_code == 200
