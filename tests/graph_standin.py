"""A stand-in for the Graph API on 127.0.0.1, for end-to-end tests: real HTTP, real sockets, no Meta.

It implements the calls the bot makes (reply under a comment or post, send a Messenger message, list a
comment's replies, hide a comment), records every call, keeps what was "posted" so read-back works, and can
be scripted to fail (HTTP status + Graph error body) or to stall (a read timeout on our side) a number of times.
Serve it with ``tests.servers.serve_wsgi``, which binds a loopback port of the kernel's choosing.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.servers import serve_wsgi

PAGE_ID_PLACEHOLDER = "104000000000001"  # the business id in usage headers (any id; the bot reads the values)

__all__ = ["Fault", "GraphCall", "GraphStandIn", "serve_wsgi"]  # serve_wsgi: where it used to live


@dataclass
class GraphCall:
    """One request as the stand-in received it; ``body`` merges form fields and a JSON body."""

    method: str
    path: str
    query: dict[str, str]
    body: dict[str, Any]
    status: int = 0
    at: float = field(default_factory=time.time)

    @property
    def object_id(self) -> str:
        """The node the call addresses: ``/v25.0/{id}/comments`` → ``{id}``."""
        parts = self.path.strip("/").split("/")
        return parts[1] if len(parts) > 1 else ""


@dataclass
class Fault:
    """Answer the next ``times`` matching calls with ``status``/``error`` (or stall ``delay`` seconds first)."""

    times: int
    status: int
    error: dict[str, Any] | None
    method: str | None = None
    path_contains: str | None = None
    delay: float = 0.0
    then_apply: bool = False  # stall, then really perform the write: the ambiguous "sent but timed out" case
    drop: bool = False  # perform the write, then reset the connection: the response is lost
    headers: dict[str, str] = field(default_factory=dict)

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path_contains is None or self.path_contains in path)


class GraphStandIn:
    """The WSGI app; ``calls`` lists every request, ``comments``/``messages`` what was accepted."""

    def __init__(self, page_id: str, access_token: str = "page-token", version: str = "v25.0") -> None:
        self.page_id, self.access_token, self.version = page_id, access_token, version
        self.calls: list[GraphCall] = []
        self.comments: dict[str, list[dict[str, Any]]] = {}  # parent id → replies the page posted
        self.messages: list[dict[str, Any]] = []
        self.hidden: set[str] = set()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._echo: tuple[str, str] | None = None
        self.echo_threads: list[threading.Thread] = []

    # -- scripting --

    def echo_to(self, webhook_url: str, app_secret: str) -> None:
        """Deliver a signed Messenger echo (with our ``metadata``) to ``webhook_url`` for every message sent, as
        Facebook does for a subscribed page: the bot reads an ambiguous send back from it."""
        self._echo = (webhook_url, app_secret)

    def lose_responses(self, times: int, *, path_contains: str | None = None) -> None:
        """Perform the next ``times`` matching POSTs, then reset the connection before any response."""
        self._faults.append(Fault(times, 200, None, "POST", path_contains, then_apply=True, drop=True))

    def fail(self, times: int, status: int = 500, code: int = 2, message: str = "Service temporarily unavailable",
             *, method: str | None = "POST", path_contains: str | None = None, error_type: str = "OAuthException",
             transient: bool = True) -> None:
        """The next ``times`` matching calls get a Graph error body with ``code`` under HTTP ``status``."""
        error = {"message": message, "type": error_type, "code": code, "is_transient": transient,
                 "fbtrace_id": "StandInTrace"}
        self._faults.append(Fault(times, status, error, method, path_contains))

    def rate_limit(self, times: int, code: int = 32, *, path_contains: str | None = None,
                   regain_minutes: int | None = None) -> None:
        """Page-level throttling (code 32, or 4/17/613) for the next ``times`` calls; with ``regain_minutes`` the
        answer carries Meta's usage header saying when access comes back."""
        self.fail(times, 400, code, "Page request limit reached", method=None, path_contains=path_contains,
                  transient=True)
        if regain_minutes is not None:
            usage = {PAGE_ID_PLACEHOLDER: [{"type": "pages", "call_count": 100, "total_cputime": 10,
                                            "total_time": 10, "estimated_time_to_regain_access": regain_minutes}]}
            self._faults[-1].headers = {"X-Business-Use-Case-Usage": json.dumps(usage)}

    def stall(self, times: int, seconds: float, *, apply: bool = True, path_contains: str | None = None) -> None:
        """Hold the next ``times`` POSTs ``seconds`` (longer than the client's read timeout), then apply them."""
        self._faults.append(Fault(times, 200, None, "POST", path_contains, delay=seconds, then_apply=apply))

    # -- inspection --

    def calls_to(self, method: str, suffix: str = "") -> list[GraphCall]:
        return [c for c in self.calls if c.method == method and c.path.endswith(suffix) and 200 <= c.status < 300]

    def replies_under(self, object_id: str) -> list[dict[str, Any]]:
        return list(self.comments.get(object_id, []))

    # -- WSGI --

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        body: dict[str, Any] = dict(request.form.items())
        if request.is_json:
            body.update(request.get_json(silent=True) or {})
        call = GraphCall(request.method, request.path, dict(request.args.items()), body)
        with self._lock:
            self.calls.append(call)
            fault = self._take_fault(request.method, request.path)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and not fault.then_apply:
            call.status = fault.status
            response = self._json(fault.status, {"error": fault.error})
            response.headers.update(fault.headers)
            return response(environ, start_response)
        token = request.args.get("access_token") or body.get("access_token")
        if token != self.access_token:
            call.status = 400
            error = {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}
            return self._json(400, {"error": error})(environ, start_response)
        status, payload = self._route(request.method, request.path, request.args, body)
        call.status = status
        if fault is not None and fault.drop:
            call.status = 599  # performed, but the caller never hears of it
            connection = environ.get("werkzeug.socket")
            if connection is not None:
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                connection.shutdown(socket.SHUT_RDWR)
            return []
        return self._json(status, payload)(environ, start_response)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.times > 0 and fault.matches(method, path):
                fault.times -= 1
                return fault
        return None

    def _route(self, method: str, path: str, args: Any, body: dict[str, Any]) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if len(parts) < 2 or parts[0] != self.version:
            return 404, {"error": {"message": "Unknown path", "type": "GraphMethodException", "code": 100}}
        node, edge = parts[1], parts[2] if len(parts) > 2 else ""
        with self._lock:
            if method == "POST" and edge == "comments":
                return 200, self._post_comment(node, str(body.get("message", "")))
            if method == "POST" and edge == "messages" and node == self.page_id:
                return 200, self._post_message(body)
            if method == "GET" and edge == "comments":
                return 200, self._list_comments(node, args.get("since"))
            if method == "GET" and edge == "conversations" and node == self.page_id:
                return 200, self._conversation(str(args.get("user_id", "")))
            if method == "POST" and not edge and "is_hidden" in body:
                (self.hidden.add if body["is_hidden"] == "true" else self.hidden.discard)(node)
                return 200, {"success": True}
        return 400, {"error": {"message": f"Unsupported {method} request", "type": "GraphMethodException",
                               "code": 100}}

    def _post_comment(self, parent: str, message: str) -> dict[str, Any]:
        reply_id = f"{parent.split('_')[-1]}_{900000000000 + next(self._ids)}"
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
        self.comments.setdefault(parent, []).append(
            {"id": reply_id, "message": message, "created_time": created,
             "from": {"id": self.page_id, "name": "Pemprov NTB"}})
        return {"id": reply_id}

    def _post_message(self, body: dict[str, Any]) -> dict[str, Any]:
        recipient = body.get("recipient") or {}
        message_id = f"m_standin_{next(self._ids)}"
        commented = str(recipient.get("comment_id") or recipient.get("post_id"))
        recipient_id = recipient.get("id") or self.psid_for(commented)
        self.messages.append({**body, "message_id": message_id, "psid": recipient_id,
                              "created_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")})
        if self._echo is not None:
            message = body.get("message") or {}
            thread = threading.Thread(target=self._send_echo, args=(recipient_id, message_id, message), daemon=True)
            self.echo_threads.append(thread)
            thread.start()
        return {"recipient_id": recipient_id, "message_id": message_id}

    def _send_echo(self, recipient_id: str, message_id: str, message: dict[str, Any]) -> None:
        import requests

        assert self._echo is not None
        url, secret = self._echo
        now = int(time.time() * 1000)
        echo = {"mid": message_id, "is_echo": True, "app_id": 1517776481860111, "text": message.get("text", ""),
                "metadata": message.get("metadata")}
        body = json.dumps({"object": "page", "entry": [{"id": self.page_id, "time": now, "messaging": [
            {"sender": {"id": self.page_id}, "recipient": {"id": recipient_id}, "timestamp": now,
             "message": echo}]}]}).encode()
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        for _ in range(60):  # as Facebook does, until the webhook takes it
            try:
                if requests.post(url, data=body, timeout=5, headers={
                        "X-Hub-Signature-256": signature, "Content-Type": "application/json"}).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)

    @staticmethod
    def psid_for(comment_or_post: str) -> str:
        """The commenter's PSID that a private reply's answer names: numeric, like every Facebook id (the bot
        refuses any other in an echo), the same for the same comment."""
        return str(7100000000000000 + int(hashlib.sha256(comment_or_post.encode()).hexdigest()[:12], 16) % 10**14)

    def _conversation(self, psid: str) -> dict[str, Any]:
        """The Page's Messenger thread with one person (Conversations API), newest message first."""
        sent = [{"id": m["message_id"], "message": (m.get("message") or {}).get("text"),
                 "created_time": m["created_time"], "from": {"id": self.page_id, "name": "Pemprov NTB"}}
                for m in reversed(self.messages) if m["psid"] == psid]
        return {"data": [{"id": f"t_{psid}", "messages": {"data": sent}}] if sent else [], "paging": {}}

    def _list_comments(self, node: str, since: str | None) -> dict[str, Any]:
        items = self.comments.get(node, [])
        if since:
            threshold = datetime.fromtimestamp(int(since), UTC)
            items = [i for i in items
                     if datetime.strptime(i["created_time"], "%Y-%m-%dT%H:%M:%S%z") >= threshold]
        return {"data": items, "paging": {}}

    @staticmethod
    def _json(status: int, payload: Any) -> Response:
        return Response(json.dumps(payload), status=status, mimetype="application/json")
