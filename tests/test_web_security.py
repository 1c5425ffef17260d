"""One set of security headers on every response the app sends: the webhook (accepted or refused), the health
checks, the agency page with its forms, redirects and error pages, unknown addresses and the stylesheet; HSTS
only when PUBLIC_BASE_URL is https. Errors on the agency's addresses are the shared page, elsewhere JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update
from werkzeug.test import TestResponse

from ntbcare.core.db import Database
from ntbcare.core.migrate import upgrade
from ntbcare.core.models import Ticket
from ntbcare.pipeline.runtime import Runtime
from tests.conftest import Poster, RecordingDispatcher, make_settings
from tests.test_agency_page import build_agency_app, parse, seed, token_for

HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
CSP_REQUIRED = {"default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"}
HSTS = "Strict-Transport-Security"


@pytest.fixture
def build(sqlite_url: str) -> Iterator[Callable[[str], tuple[FlaskClient, Runtime, int]]]:
    """An app for a PUBLIC_BASE_URL: its test client, its runtime and a ticket forwarded to PLN."""
    db = Database(sqlite_url)
    upgrade(db.engine)
    ticket_id = seed(db)

    def make(public_base_url: str) -> tuple[FlaskClient, Runtime, int]:
        settings = make_settings(DATABASE_URL=sqlite_url, PUBLIC_BASE_URL=public_base_url,
                                 WEBHOOK_MAX_BODY_BYTES="2048", GRAPH_API_BASE_URL="http://127.0.0.1:9")
        runtime = Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher())
        return build_agency_app(runtime).test_client(), runtime, ticket_id

    yield make
    db.dispose()


def every_kind_of_response(web: FlaskClient, runtime: Runtime, ticket_id: int, base: str
                           ) -> dict[str, TestResponse]:
    """One response of each kind the app gives, by name; ``base`` is the scheme and host requests go to."""
    post = Poster(web)
    token = token_for(ticket_id)
    page = web.get(f"{base}/a/{token}")
    forms = parse(page.data).forms
    responses = {
        "webhook handshake": web.get(f"{base}/webhook?hub.mode=subscribe&hub.verify_token=test-verify-token"
                                     "&hub.challenge=42"),
        "webhook handshake refused": web.get(f"{base}/webhook?hub.mode=subscribe&hub.verify_token=wrong"
                                             "&hub.challenge=42"),
        "webhook delivery": post("feed__comment__add"),
        "webhook unsigned": web.post(f"{base}/webhook", data=b"{}", content_type="application/json"),
        "webhook bad signature": post({"object": "page", "entry": []}, secret="not-the-secret"),
        "webhook not json": post(b"{not json"),
        "webhook too large": post({"object": "page", "entry": [], "pad": "x" * 4096}),
        "healthz": web.get(f"{base}/healthz"),
        "readyz": web.get(f"{base}/readyz"),
        "unknown address": web.get(f"{base}/nothing-here"),
        "stylesheet": web.get(f"{base}/static/ntbcare.css"),
        "agency page": page,
        "agency page tampered link": web.get(f"{base}/a/{token}x"),
        "agency form opened with GET": web.get(f"{base}/a/{token}/done"),
        "agency form without csrf": web.post(f"{base}/a/{token}/done", data={"note": "x"}),
        "agency form error": web.post(f"{base}/a/{token}/answer", data={**forms[f"/a/{token}/answer"], "answer": ""}),
        "agency form redirect": web.post(f"{base}/a/{token}/done",
                                         data={**forms[f"/a/{token}/done"], "note": "Trafo sudah diganti"}),
        "agency page not actionable": web.post(f"{base}/a/{token}/answer",
                                               data={**forms[f"/a/{token}/answer"], "answer": "Sudah beres"}),
    }
    with runtime.db.scope() as session:
        session.execute(update(Ticket).values(link_version=Ticket.link_version + 1))
    responses["agency page revoked link"] = web.get(f"{base}/a/{token}")
    return responses


EXPECTED_STATUS = {
    "webhook handshake": 200, "webhook handshake refused": 403, "webhook delivery": 200, "webhook unsigned": 401,
    "webhook bad signature": 403, "webhook not json": 400, "webhook too large": 413, "healthz": 200, "readyz": 200,
    "unknown address": 404, "stylesheet": 200, "agency page": 200, "agency page tampered link": 410,
    "agency form opened with GET": 405, "agency form without csrf": 400, "agency form error": 422,
    "agency form redirect": 303, "agency page not actionable": 409, "agency page revoked link": 410,
}


def assert_shared_headers(name: str, response: TestResponse) -> None:
    for header, value in HEADERS.items():
        if header == "Cache-Control" and name == "stylesheet":
            assert response.headers.get(header) in ("no-store", "no-cache"), name  # revalidated, never stale
            continue
        assert response.headers.get(header) == value, (name, header)
    directives = {part.strip() for part in response.headers["Content-Security-Policy"].split(";")}
    assert directives >= CSP_REQUIRED, name
    assert not any(d.startswith("script-src") or "unsafe" in d for d in directives), name


def test_every_response_carries_the_shared_headers_and_no_hsts_over_http(build):
    web, runtime, ticket_id = build("http://ntbcare.test")
    responses = every_kind_of_response(web, runtime, ticket_id, "http://ntbcare.test")
    assert {name: r.status_code for name, r in responses.items()} == EXPECTED_STATUS
    for name, response in responses.items():
        assert_shared_headers(name, response)
        assert HSTS not in response.headers, name
    assert len({r.headers["Content-Security-Policy"] for r in responses.values()}) == 1  # one policy for all


def test_over_https_every_response_also_carries_hsts(build):
    web, runtime, ticket_id = build("https://care.ntbprov.go.id")
    responses = every_kind_of_response(web, runtime, ticket_id, "https://care.ntbprov.go.id")
    assert {name: r.status_code for name, r in responses.items()} == EXPECTED_STATUS
    for name, response in responses.items():
        assert_shared_headers(name, response)
        hsts = {part.strip() for part in response.headers.get(HSTS, "").split(";")}
        assert "includeSubDomains" in hsts, name
        [max_age] = [part for part in hsts if part.startswith("max-age=")]
        assert int(max_age.removeprefix("max-age=")) >= 180 * 86400, name  # long enough for browsers to keep


def test_errors_are_the_shared_page_on_the_agency_addresses_and_json_elsewhere(build):
    web, runtime, ticket_id = build("http://ntbcare.test")
    responses = every_kind_of_response(web, runtime, ticket_id, "http://ntbcare.test")
    for name in ("agency form opened with GET", "agency form without csrf"):
        response = responses[name]
        assert response.mimetype == "text/html", name
        page = parse(response.data)
        assert "Permintaan tidak dapat diproses" in page.text and f"Kode: {response.status_code}" in page.text
    assert "Formulir kedaluwarsa" in parse(responses["agency form without csrf"].data).text
    for name in ("unknown address", "webhook too large"):
        body = json.loads(responses[name].data)
        assert responses[name].mimetype == "application/json" and body["error"], name
    unknown_agency_address = web.get(f"/a/{token_for(ticket_id)}/elsewhere")
    assert unknown_agency_address.status_code == 404 and unknown_agency_address.mimetype == "text/html"
    assert "Halaman tidak ditemukan" in parse(unknown_agency_address.data).text
