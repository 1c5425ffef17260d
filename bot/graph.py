"""Thin Graph API client for one Page: authenticated calls, timeouts, typed errors and usage pacing.

It does no retrying of its own (retries belong to one layer, the job queue) and no reply logic; it only makes
each call safe: (connect, read) timeouts on every request, ``appsecret_proof`` on every request, tokens masked
in every error and log line, and failures mapped to the ``bot.errors`` class that says what to do next.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from bot.errors import (
    READ_METHODS,
    AmbiguousOutcomeError,
    InvalidRequestError,
    RateLimitedError,
    parse_graph_error,
    transport_error,
)
from bot.ids import path_segment
from bot.ratelimit import UsageGovernor
from ntbcare.core.metrics import graph_error

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (3.05, 20.0)
DEFAULT_MAX_WAIT_SECONDS = 60.0
REPLY_FIELDS = "id,from,message,created_time"
MESSAGE_FIELDS = "id,from,message,created_time"
PROFILE_FIELDS = "first_name,last_name,profile_pic"
NO_PROFILE_SUBCODE = 2018218
MESSAGING_TYPES = frozenset({"RESPONSE", "UPDATE", "MESSAGE_TAG"})
AUTH_PARAMS = frozenset({"access_token", "appsecret_proof"})


def appsecret_proof(app_secret: str, access_token: str) -> str:
    """HMAC-SHA256 of the token keyed with the app secret, as Meta expects in ``appsecret_proof``."""
    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


def _parse_created_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    for pattern in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            return datetime.strptime(value, pattern)
        except ValueError:
            continue
    return None


class GraphClient:
    """Graph API calls on behalf of one Page, with its Page token.

    ``governor`` paces calls from the usage headers; share one per Page across the threads of a process.
    When the governor asks for a wait longer than ``max_wait_seconds`` the client raises ``RateLimitedError``
    instead of sleeping, so a queue worker can reschedule the job rather than hold its slot.
    """

    def __init__(
        self,
        base_url: str,
        version: str,
        page_id: str,
        page_token: str,
        app_secret: str,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        governor: UsageGovernor | None = None,
        max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS,
    ) -> None:
        if not page_token or not app_secret:
            raise ValueError("page_token and app_secret are required")
        self.base_url = base_url.rstrip("/")
        self.version = version.strip("/")
        self.page_id = page_id
        self.timeout = timeout
        self.max_wait_seconds = max_wait_seconds
        self.governor = governor if governor is not None else UsageGovernor()
        self._session = session if session is not None else requests.Session()
        self._page_token = page_token
        self._proof = appsecret_proof(app_secret, page_token)
        self._secrets = (page_token, self._proof, app_secret)

    def __repr__(self) -> str:
        return f"GraphClient(base_url={self.base_url!r}, version={self.version!r}, page_id={self.page_id!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- generic calls -------------------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """GET ``/{version}/{path}``; returns the JSON object or raises a ``GraphError`` subclass."""
        return self._request("GET", self._url(*path.strip("/").split("/")), params=dict(params or {}))

    def post(
        self, path: str, data: Mapping[str, Any] | None = None, json: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """POST form ``data`` or a ``json`` body; a timeout here raises ``AmbiguousOutcomeError``."""
        if data is not None and json is not None:
            raise ValueError("pass either data or json, not both")
        return self._request("POST", self._url(*path.strip("/").split("/")), data=data, json=json)

    def _url(self, *segments: str) -> str:
        """``{base}/{version}/{segment}/...``, each segment quoted whole (ids come from payloads)."""
        return f"{self.base_url}/{self.version}/" + "/".join(path_segment(segment) for segment in segments)

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        json: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        auth = {"access_token": self._page_token, "appsecret_proof": self._proof}
        params = dict(params or {})
        if method in READ_METHODS or json is not None:
            params.update(auth)
        else:
            data = {**(data or {}), **auth}
        self._wait_for_governor()
        path = urlsplit(url).path
        try:
            response = self._session.request(
                method, url, params=params or None, data=data, json=json, timeout=self.timeout
            )
        except requests.RequestException as exc:
            error = transport_error(method, exc, redact=self._secrets)
            graph_error(None)
            logger.warning("Graph %s %s failed: %s", method, path, error)
            raise error from None
        self.governor.observe(response)
        logger.debug("Graph %s %s -> HTTP %s", method, path, response.status_code)
        return self._handle_response(method, path, response)

    def _wait_for_governor(self) -> None:
        delay = self.governor.delay_before_next_call()
        if delay > self.max_wait_seconds:
            raise RateLimitedError(
                f"calls paused by the usage governor for {delay:.0f} s", retry_after_seconds=delay
            )
        self.governor.wait()

    def _handle_response(self, method: str, path: str, response: requests.Response) -> dict[str, Any]:
        try:
            payload: Any = response.json()
        except ValueError:
            payload = None
        if response.ok and payload is True:
            return {"success": True}
        if response.ok and isinstance(payload, dict) and "error" not in payload:
            return payload
        error = parse_graph_error(
            response.status_code,
            payload if isinstance(payload, dict) else response.content,
            response.headers,
            method=method,
            redact=self._secrets,
        )
        if isinstance(error, RateLimitedError):
            self.governor.note_throttled(error.retry_after_seconds)
        graph_error(error.code)
        logger.warning("Graph %s %s failed: %s (%s)", method, path, error, type(error).__name__)
        raise error

    # -- Page operations -----------------------------------------------------------------------------------

    def reply_to_comment(self, object_id: str, message: str) -> str:
        """Public reply under a comment or visitor post; returns the new comment's id."""
        result = self._request("POST", self._url(object_id, "comments"), data={"message": message})
        comment_id = result.get("id")
        if not isinstance(comment_id, str) or not comment_id:
            raise AmbiguousOutcomeError(f"comment reply on {object_id} answered without an id")
        return comment_id

    def send_message(
        self,
        psid: str,
        text: str,
        *,
        messaging_type: str = "RESPONSE",
        tag: str | None = None,
        metadata: str | None = None,
        quick_replies: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Send API text message; ``metadata`` returns in the echo, so a timed-out send can be reconciled."""
        if messaging_type not in MESSAGING_TYPES:
            raise ValueError(f"unknown messaging_type {messaging_type!r}")
        if (messaging_type == "MESSAGE_TAG") != (tag is not None):
            raise ValueError("a tag is required with MESSAGE_TAG and only allowed with it")
        body: dict[str, Any] = {"recipient": {"id": psid}, "messaging_type": messaging_type}
        body["message"] = self._message(text, metadata, quick_replies)
        if tag is not None:
            body["tag"] = tag
        return self._request("POST", self._url(self.page_id, "messages"), json=body)

    def send_private_reply(
        self, comment_or_post_id: str, text: str, *, is_post: bool = False, metadata: str | None = None
    ) -> dict[str, Any]:
        """The one private Messenger reply Meta allows per comment or visitor post (within 7 days)."""
        recipient_key = "post_id" if is_post else "comment_id"
        body = {
            "recipient": {recipient_key: comment_or_post_id},
            "messaging_type": "RESPONSE",
            "message": self._message(text, metadata, None),
        }
        return self._request("POST", self._url(self.page_id, "messages"), json=body)

    @staticmethod
    def _message(
        text: str, metadata: str | None, quick_replies: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        if not text:
            raise ValueError("message text must not be empty")
        message: dict[str, Any] = {"text": text}
        if metadata is not None:
            message["metadata"] = metadata
        if quick_replies:
            message["quick_replies"] = quick_replies
        return message

    def hide_comment(self, comment_id: str, hidden: bool = True) -> bool:
        """Hide (or show again) a comment; True when Meta confirms."""
        result = self._request("POST", self._url(comment_id), data={"is_hidden": "true" if hidden else "false"})
        return result.get("success") is True

    def list_comment_replies(
        self, comment_id: str, since: datetime | None = None, *, max_pages: int = 10, page_size: int = 100
    ) -> list[dict[str, Any]]:
        """Replies under a comment created at or after ``since``: tells whether our reply was posted.

        Follows ``paging.next`` for at most ``max_pages`` pages, always on this client's own base URL.
        """
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        params: dict[str, Any] = {"fields": REPLY_FIELDS, "limit": page_size}
        if since is not None:
            params["since"] = int(since.timestamp())
        url = self._url(comment_id, "comments")
        replies: list[dict[str, Any]] = []
        for _ in range(max_pages):
            page = self._request("GET", url, params=params)
            replies.extend(item for item in page.get("data") or [] if isinstance(item, dict))
            next_url = (page.get("paging") or {}).get("next")
            if not isinstance(next_url, str) or not next_url:
                break
            url, params = self._follow(next_url)
        else:
            logger.warning("Replies of %s cut at %d pages", comment_id, max_pages)
        if since is None:
            return replies
        return [item for item in replies if not self._created_before(item, since)]

    def list_conversation_messages(self, psid: str, since: datetime, *, limit: int = 25) -> list[dict[str, Any]]:
        """The latest messages of the Page's Messenger conversation with ``psid`` created at or after ``since``
        (Conversations API; needs the MESSAGING task): tells whether a send whose answer was lost went out."""
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        params = {"platform": "messenger", "user_id": psid,
                  "fields": f"messages.limit({limit}){{{MESSAGE_FIELDS}}}"}
        page = self._request("GET", self._url(self.page_id, "conversations"), params=params)
        messages: list[dict[str, Any]] = []
        for conversation in page.get("data") or []:
            if isinstance(conversation, dict):
                thread = conversation.get("messages") or {}
                messages.extend(item for item in thread.get("data") or [] if isinstance(item, dict))
        return [item for item in messages if not self._created_before(item, since)]

    @staticmethod
    def _created_before(item: Mapping[str, Any], since: datetime) -> bool:
        created = _parse_created_time(item.get("created_time"))
        return created is not None and created < since

    def _follow(self, next_url: str) -> tuple[str, dict[str, Any]]:
        """Split a ``paging.next`` URL; only its path and cursor are kept and sent to our own base URL."""
        target = urlsplit(next_url)
        params = {key: value for key, value in parse_qsl(target.query) if key not in AUTH_PARAMS}
        return f"{self.base_url}{target.path}", params

    def get_user_profile(self, psid: str) -> dict[str, Any]:
        """Name and picture of a Messenger user; ``{}`` when Meta has no profile for them (100/2018218)."""
        try:
            return self._request("GET", self._url(psid), params={"fields": PROFILE_FIELDS})
        except InvalidRequestError as exc:
            if exc.code == 100 and exc.subcode == NO_PROFILE_SUBCODE:
                return {}
            raise

    def subscribed_apps(self) -> list[dict[str, Any]]:
        """Apps subscribed to the Page's webhooks; empty means our webhook receives nothing."""
        data = self._request("GET", self._url(self.page_id, "subscribed_apps")).get("data")
        return data if isinstance(data, list) else []
