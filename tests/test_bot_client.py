"""The process-wide Graph client: one per Page, rebuilt from the current settings, the replaced one closed."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from bot.client import close_graph_clients, graph_client
from tests.conftest import APP_SECRET, PAGE_ID, make_settings

BASE = "https://graph.test"
VERSION = "v25.0"
TOKEN = "EAAPageTokenForTests"
ROTATED_SECRET = "rotated-app-secret-0123456789abcd"


def proof(secret: str, token: str = TOKEN) -> str:
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def page_settings(**overrides: str):  # type: ignore[no-untyped-def]
    return make_settings(**{"FB_PAGE_ACCESS_TOKEN": TOKEN, "GRAPH_API_BASE_URL": BASE,
                            "GRAPH_API_VERSION": VERSION, **overrides})


@pytest.fixture
def graph() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        rsps.get(re.compile(rf"{re.escape(BASE)}/{VERSION}/.*"), json={"data": []})
        yield rsps
    close_graph_clients()


def sent_proofs(rsps: responses.RequestsMock) -> list[str]:
    return [parse_qs(urlsplit(call.request.url).query)["appsecret_proof"][0] for call in rsps.calls]


def test_after_the_app_secret_is_rotated_the_next_call_is_signed_with_the_new_one(graph, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    closed: list[requests.Session] = []
    original_close = requests.Session.close

    def recording_close(session: requests.Session) -> None:
        closed.append(session)
        original_close(session)

    monkeypatch.setattr(requests.Session, "close", recording_close)
    first = graph_client(page_settings())
    first.list_comment_replies(f"{PAGE_ID}_1")
    old_session = first._session
    assert closed == []

    second = graph_client(page_settings(FB_APP_SECRET=ROTATED_SECRET))
    second.list_comment_replies(f"{PAGE_ID}_1")

    assert sent_proofs(graph) == [proof(APP_SECRET), proof(ROTATED_SECRET)]
    assert closed == [old_session]  # the replaced client let go of its connections
    assert second.governor is first.governor  # a new secret does not lift Meta's throttle
    assert graph_client(page_settings(FB_APP_SECRET=ROTATED_SECRET)) is second


@pytest.mark.parametrize(("setting", "value"), [("FB_PAGE_ACCESS_TOKEN", "EAAReplacedPageToken"),
                                                ("GRAPH_API_BASE_URL", "https://graph-other.test"),
                                                ("GRAPH_API_VERSION", "v26.0")])
def test_any_change_to_what_the_client_is_built_from_builds_a_new_one(setting, value) -> None:  # type: ignore[no-untyped-def]
    try:
        first = graph_client(page_settings())
        second = graph_client(page_settings(**{setting: value}))
        assert second is not first
        assert graph_client(page_settings(**{setting: value})) is second
    finally:
        close_graph_clients()
