"""Graph client: error classification, authentication, timeouts, token masking and the Page operations."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import threading
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
import urllib3.exceptions

from bot.errors import (
    AmbiguousOutcomeError,
    ConnectionFailedError,
    DuplicatePostError,
    GraphError,
    GraphPermissionError,
    InvalidRequestError,
    OutsideWindowError,
    PolicyBlockedError,
    RateLimitedError,
    TokenInvalidError,
    TransientGraphError,
    parse_graph_error,
)
from bot.graph import GraphClient

BASE = "https://graph.test"
VERSION = "v25.0"
PAGE_ID = "104000000000001"
TOKEN = "EAAPageTokenSecretValue123"
APP_SECRET = "app-secret-xyz"
PROOF = hmac.new(APP_SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()
HTML_502 = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"


def graph_error(code, subcode=None, message="boom", **extra):
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbC123", **extra}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


ERROR_TABLE = [
    # (status, body, method, expected class, code, subcode, is_transient)
    (500, graph_error(1), "GET", TransientGraphError, 1, None, True),
    (500, graph_error(1), "POST", AmbiguousOutcomeError, 1, None, False),
    (400, graph_error(2), "GET", TransientGraphError, 2, None, True),
    (400, graph_error(2), "POST", AmbiguousOutcomeError, 2, None, False),
    (400, graph_error(2, 2018344), "GET", GraphPermissionError, 2, 2018344, False),
    (400, graph_error(4), "POST", RateLimitedError, 4, None, True),
    (400, graph_error(17), "GET", RateLimitedError, 17, None, True),
    (400, graph_error(32), "GET", RateLimitedError, 32, None, True),
    (400, graph_error(341), "POST", RateLimitedError, 341, None, True),
    (400, graph_error(613), "POST", RateLimitedError, 613, None, True),
    (400, graph_error(80001), "GET", RateLimitedError, 80001, None, True),
    (400, graph_error(80006), "POST", RateLimitedError, 80006, None, True),
    (400, graph_error("613"), "POST", RateLimitedError, 613, None, True),
    (400, graph_error(368), "POST", PolicyBlockedError, 368, None, True),
    (400, graph_error(190), "GET", TokenInvalidError, 190, None, False),
    (400, graph_error(190, 463), "POST", TokenInvalidError, 190, 463, False),
    (401, graph_error(190, 460), "GET", TokenInvalidError, 190, 460, False),
    (400, graph_error(10, 2018278), "POST", OutsideWindowError, 10, 2018278, False),
    (400, graph_error(10, 2534022), "POST", OutsideWindowError, 10, 2534022, False),
    (400, graph_error(551, 1545041), "POST", OutsideWindowError, 551, 1545041, False),
    (400, graph_error(10), "POST", GraphPermissionError, 10, None, False),
    (403, graph_error(10, 2018108), "POST", GraphPermissionError, 10, 2018108, False),
    (400, graph_error(3), "GET", GraphPermissionError, 3, None, False),
    (400, graph_error(200), "POST", GraphPermissionError, 200, None, False),
    (400, graph_error(230), "POST", GraphPermissionError, 230, None, False),
    (400, graph_error(299), "POST", GraphPermissionError, 299, None, False),
    (400, graph_error(300), "POST", InvalidRequestError, 300, None, False),
    (400, graph_error(506), "POST", DuplicatePostError, 506, None, False),
    (400, graph_error(100), "GET", InvalidRequestError, 100, None, False),
    (500, graph_error(100), "POST", InvalidRequestError, 100, None, False),
    (400, graph_error(100, 2018218), "GET", InvalidRequestError, 100, 2018218, False),
    (400, graph_error(12345, is_transient=True), "GET", TransientGraphError, 12345, None, True),
    (400, graph_error(12345, is_transient=True), "POST", AmbiguousOutcomeError, 12345, None, False),
    (400, graph_error(12345), "GET", InvalidRequestError, 12345, None, False),
    (502, HTML_502, "POST", TransientGraphError, None, None, True),
    (503, b"", "GET", TransientGraphError, None, None, True),
    (500, "not json {", "POST", TransientGraphError, None, None, True),
    (504, None, "GET", TransientGraphError, None, None, True),
    (404, b"<html>Not Found</html>", "GET", InvalidRequestError, None, None, False),
    (400, json.dumps([1, 2, 3]), "GET", InvalidRequestError, None, None, False),
    (400, b"\xff\xfe\x00junk", "GET", InvalidRequestError, None, None, False),
    (400, {"error": {"code": None, "message": 5}}, "GET", InvalidRequestError, None, None, False),
    (429, b"", "GET", RateLimitedError, None, None, True),
]


@pytest.mark.parametrize(("status", "body", "method", "expected", "code", "subcode", "transient"), ERROR_TABLE)
def test_error_table(status, body, method, expected, code, subcode, transient):
    error = parse_graph_error(status, body, {}, method=method)

    assert type(error) is expected
    assert (error.http_status, error.code, error.subcode) == (status, code, subcode)
    assert error.is_transient is transient
    # What an operator reads in the reply row and the log: Meta's code, its message, and the HTTP status.
    readable = isinstance(body, dict) and isinstance(body["error"].get("message"), str)
    expected_message = "boom" if readable else f"HTTP {status} without a readable Graph error body"
    text = str(error)
    assert expected_message in text and f"HTTP {status}" in text
    if code is not None:
        assert text.startswith(f"(#{code}/{subcode})" if subcode is not None else f"(#{code})")
    if readable:
        assert "fbtrace_id AbC123" in text


def test_error_keeps_meta_fields_for_operators():
    body = graph_error(551, 1545041, message="(#551) This person isn't available right now.",
                       error_user_title="Tidak tersedia", error_user_msg="Orang ini tidak tersedia")
    error = parse_graph_error(400, json.dumps(body).encode(), {}, method="POST")

    assert error.message == "(#551) This person isn't available right now."
    assert (error.type, error.fbtrace_id) == ("OAuthException", "AbC123")
    assert (error.user_title, error.user_message) == ("Tidak tersedia", "Orang ini tidak tersedia")
    assert "AbC123" in str(error) and "551" in str(error)


def test_ambiguous_is_never_caught_as_transient():
    error = parse_graph_error(500, graph_error(2), {}, method="POST")
    assert not isinstance(error, TransientGraphError)


@pytest.mark.parametrize(
    ("headers", "expected_seconds"),
    [
        ({"X-Business-Use-Case-Usage": json.dumps({PAGE_ID: [{"type": "pages", "call_count": 100,
                                                              "estimated_time_to_regain_access": 7}]})}, 420.0),
        ({"x-app-usage": json.dumps({"call_count": 100, "estimated_time_to_regain_access": 2})}, 120.0),
        ({}, 300.0),
        ({"X-Business-Use-Case-Usage": "<html>"}, 300.0),
        (None, 300.0),
    ],
)
def test_rate_limit_error_carries_regain_time(headers, expected_seconds):
    error = parse_graph_error(400, graph_error(80001), headers, method="POST")
    assert isinstance(error, RateLimitedError)
    assert error.retry_after_seconds == expected_seconds


def test_secrets_in_meta_message_are_masked():
    error = parse_graph_error(400, graph_error(190, message=f"Invalid token {TOKEN}"), {}, redact=[TOKEN])
    assert TOKEN not in str(error) and TOKEN not in error.message


@pytest.fixture
def client():
    with GraphClient(BASE, VERSION, PAGE_ID, TOKEN, APP_SECRET) as graph:
        yield graph


def sent_params(call) -> dict[str, list[str]]:
    """Query parameters plus form fields of a recorded request."""
    params = parse_qs(urlsplit(call.request.url).query)
    if call.request.body and "form-urlencoded" in call.request.headers.get("Content-Type", ""):
        body = call.request.body
        params.update(parse_qs(body.decode() if isinstance(body, bytes) else body))
    return params


@responses.activate
def test_get_is_authenticated_versioned_and_timed(client):
    responses.get(f"{BASE}/{VERSION}/{PAGE_ID}", json={"id": PAGE_ID, "name": "Pemprov NTB"})

    assert client.get(PAGE_ID, {"fields": "id,name"}) == {"id": PAGE_ID, "name": "Pemprov NTB"}
    call = responses.calls[0]
    params = sent_params(call)
    assert urlsplit(call.request.url).path == f"/{VERSION}/{PAGE_ID}"
    assert params["access_token"] == [TOKEN]
    assert params["appsecret_proof"] == [PROOF]
    assert params["fields"] == ["id,name"]
    assert call.request.req_kwargs["timeout"] == (3.05, 20.0)


@responses.activate
def test_version_and_timeout_come_from_the_constructor():
    responses.get(f"{BASE}/v24.0/me", json={"id": "1"})
    graph = GraphClient(BASE + "/", "v24.0", PAGE_ID, TOKEN, APP_SECRET, timeout=(1.0, 5.0))

    graph.get("/me")
    assert responses.calls[0].request.req_kwargs["timeout"] == (1.0, 5.0)


@responses.activate
def test_every_operation_sends_token_proof_and_timeout(client):
    responses.post(f"{BASE}/{VERSION}/c1/comments", json={"id": "c1_r1"})
    responses.post(f"{BASE}/{VERSION}/{PAGE_ID}/messages", json={"recipient_id": "p1", "message_id": "m_1"})
    responses.post(f"{BASE}/{VERSION}/c1", json={"success": True})
    responses.get(f"{BASE}/{VERSION}/c1/comments", json={"data": []})
    responses.get(f"{BASE}/{VERSION}/p1", json={"first_name": "Baiq"})
    responses.get(f"{BASE}/{VERSION}/{PAGE_ID}/subscribed_apps", json={"data": [{"id": "app1"}]})

    client.reply_to_comment("c1", "Terima kasih")
    client.send_message("p1", "Laporan diterima")
    client.send_private_reply("c1", "Laporan diterima")
    client.hide_comment("c1")
    client.list_comment_replies("c1")
    client.get_user_profile("p1")
    client.subscribed_apps()

    assert len(responses.calls) == 7
    for call in responses.calls:
        params = sent_params(call)
        assert params["access_token"] == [TOKEN], call.request.url
        assert params["appsecret_proof"] == [PROOF], call.request.url
        assert call.request.req_kwargs["timeout"] == (3.05, 20.0)


@responses.activate
def test_reply_to_comment_posts_message_and_returns_new_id(client):
    responses.post(f"{BASE}/{VERSION}/c1/comments", json={"id": "c1_r9"})

    assert client.reply_to_comment("c1", "Sudah diteruskan ke Dinas PUPR") == "c1_r9"
    assert sent_params(responses.calls[0])["message"] == ["Sudah diteruskan ke Dinas PUPR"]


@responses.activate
def test_reply_without_id_is_ambiguous(client):
    responses.post(f"{BASE}/{VERSION}/c1/comments", json={})
    with pytest.raises(AmbiguousOutcomeError):
        client.reply_to_comment("c1", "Halo")


@responses.activate
def test_send_message_body(client):
    responses.post(f"{BASE}/{VERSION}/{PAGE_ID}/messages", json={"recipient_id": "p1", "message_id": "m_1"})
    quick = [{"content_type": "text", "title": "Ya", "payload": "YES"}]

    result = client.send_message("p1", "Halo", messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT",
                                 metadata="out:7f3c", quick_replies=quick)

    assert result == {"recipient_id": "p1", "message_id": "m_1"}
    assert json.loads(responses.calls[0].request.body) == {
        "recipient": {"id": "p1"},
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
        "message": {"text": "Halo", "metadata": "out:7f3c", "quick_replies": quick},
    }


@pytest.mark.parametrize(
    "kwargs",
    [{"tag": "HUMAN_AGENT"}, {"messaging_type": "MESSAGE_TAG"}, {"messaging_type": "PROMO"}, {"text": ""}],
)
@responses.activate
def test_invalid_send_is_refused_before_any_call(client, kwargs):
    arguments = {"text": "Halo", **kwargs}
    with pytest.raises(ValueError):
        client.send_message("p1", arguments.pop("text"), **arguments)
    assert len(responses.calls) == 0


@pytest.mark.parametrize(("is_post", "key"), [(False, "comment_id"), (True, "post_id")])
@responses.activate
def test_private_reply_recipient(client, is_post, key):
    responses.post(f"{BASE}/{VERSION}/{PAGE_ID}/messages", json={"recipient_id": "p1", "message_id": "m_2"})

    assert client.send_private_reply("obj_1", "Nomor laporan #NTB-1", is_post=is_post)["message_id"] == "m_2"
    body = json.loads(responses.calls[0].request.body)
    assert body["recipient"] == {key: "obj_1"}
    assert body["message"] == {"text": "Nomor laporan #NTB-1"}


@pytest.mark.parametrize(("hidden", "flag"), [(True, "true"), (False, "false")])
@responses.activate
def test_hide_comment(client, hidden, flag):
    responses.post(f"{BASE}/{VERSION}/c1", json={"success": True})

    assert client.hide_comment("c1", hidden=hidden) is True
    assert sent_params(responses.calls[0])["is_hidden"] == [flag]


@responses.activate
def test_hide_comment_reports_unconfirmed(client):
    responses.post(f"{BASE}/{VERSION}/c1", json={"success": False})
    assert client.hide_comment("c1") is False


def reply(reply_id, created):
    return {"id": reply_id, "from": {"id": PAGE_ID}, "message": "x", "created_time": created}


@responses.activate
def test_list_comment_replies_follows_paging_and_filters_by_since(client):
    foreign_next = f"https://graph.facebook.com/{VERSION}/c1/comments?access_token=OTHER&after=CUR2&limit=100"
    responses.get(f"{BASE}/{VERSION}/c1/comments", json={
        "data": [reply("r1", "2026-11-20T08:00:00+0000"), reply("r2", "2026-11-23T10:00:00+0000")],
        "paging": {"next": foreign_next},
    })
    responses.get(f"{BASE}/{VERSION}/c1/comments", json={"data": [reply("r3", "2026-11-23T11:00:00+0000")]})

    replies = client.list_comment_replies("c1", since=datetime(2026, 11, 23, 9, 0, tzinfo=UTC))

    assert [item["id"] for item in replies] == ["r2", "r3"]
    first, second = (sent_params(call) for call in responses.calls)
    assert first["fields"] == ["id,from,message,created_time"]
    assert first["since"] == [str(int(datetime(2026, 11, 23, 9, 0, tzinfo=UTC).timestamp()))]
    assert responses.calls[1].request.url.startswith(f"{BASE}/{VERSION}/c1/comments?")
    assert second["after"] == ["CUR2"]
    assert second["access_token"] == [TOKEN]


@responses.activate
def test_list_comment_replies_stops_at_page_bound(client):
    endless = {"data": [reply("r", "2026-11-23T10:00:00+0000")],
               "paging": {"next": f"{BASE}/{VERSION}/c1/comments?after=X"}}
    responses.get(f"{BASE}/{VERSION}/c1/comments", json=endless)

    assert len(client.list_comment_replies("c1", max_pages=3)) == 3
    assert len(responses.calls) == 3


@responses.activate
def test_user_profile_falls_back_to_empty_when_meta_has_none(client):
    responses.get(f"{BASE}/{VERSION}/p1", status=400, json=graph_error(100, 2018218))
    responses.get(f"{BASE}/{VERSION}/p2", status=400, json=graph_error(100, 2018001))

    assert client.get_user_profile("p1") == {}
    with pytest.raises(InvalidRequestError):
        client.get_user_profile("p2")


@responses.activate
def test_subscribed_apps(client):
    responses.get(f"{BASE}/{VERSION}/{PAGE_ID}/subscribed_apps", json={"data": []})
    assert client.subscribed_apps() == []


@responses.activate
def test_error_on_http_200_body_is_raised(client):
    responses.post(f"{BASE}/{VERSION}/c1/comments", json=graph_error(506))
    with pytest.raises(DuplicatePostError):
        client.reply_to_comment("c1", "Halo")


def refused(url: str) -> requests.ConnectionError:
    reason = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: refused")
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, url, reason))


def reset() -> requests.ConnectionError:
    return requests.ConnectionError(
        urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset by peer"))
    )


@pytest.mark.parametrize(
    ("method", "failure", "expected"),
    [
        ("POST", requests.ReadTimeout("read timed out"), AmbiguousOutcomeError),
        ("GET", requests.ReadTimeout("read timed out"), TransientGraphError),
        ("POST", requests.ConnectTimeout("connect timed out"), ConnectionFailedError),
        ("POST", refused(f"/{VERSION}/c1/comments?access_token={TOKEN}"), ConnectionFailedError),
        ("GET", refused(f"/{VERSION}/c1/comments?access_token={TOKEN}"), ConnectionFailedError),
        ("POST", reset(), AmbiguousOutcomeError),
        ("GET", reset(), TransientGraphError),
        ("POST", requests.exceptions.ChunkedEncodingError("broken body"), AmbiguousOutcomeError),
    ],
)
@responses.activate
def test_transport_failures(client, method, failure, expected, caplog):
    responses.add(method, f"{BASE}/{VERSION}/c1/comments", body=failure)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(GraphError) as caught:
        if method == "POST":
            client.post("c1/comments", data={"message": "Halo"})
        else:
            client.get("c1/comments")

    assert type(caught.value) is expected
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert TOKEN not in caplog.text and PROOF not in caplog.text


@responses.activate
def test_token_never_in_error_or_log_when_meta_echoes_it(client, caplog):
    caplog.set_level(logging.DEBUG)
    responses.get(f"{BASE}/{VERSION}/me", status=400,
                  json=graph_error(190, 463, message=f"Session expired for {TOKEN} ({APP_SECRET})"))

    with pytest.raises(TokenInvalidError) as caught:
        client.get("me")

    assert TOKEN not in str(caught.value) and APP_SECRET not in str(caught.value)
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(client) and APP_SECRET not in repr(client)


@pytest.fixture
def silent_server():
    """A loopback server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("method", "expected"), [("POST", AmbiguousOutcomeError), ("GET", TransientGraphError)])
def test_real_read_timeout(silent_server, method, expected):
    with GraphClient(silent_server, VERSION, PAGE_ID, TOKEN, APP_SECRET, timeout=(1.0, 0.2)) as graph:
        call = graph.post if method == "POST" else graph.get
        with pytest.raises(expected) as caught:
            call("c1/comments")
    assert TOKEN not in str(caught.value)


@pytest.mark.timeout(10)
def test_real_connection_refused_is_definitely_not_sent():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with GraphClient(f"http://127.0.0.1:{port}", VERSION, PAGE_ID, TOKEN, APP_SECRET,
                     timeout=(1.0, 1.0)) as graph, pytest.raises(ConnectionFailedError) as caught:
        graph.post("c1/comments", data={"message": "Halo"})
    assert TOKEN not in str(caught.value)
