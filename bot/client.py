"""One Graph client per process and Page, so that every sender thread shares one usage governor.

Meta counts calls per Page; if each job built its own client, each would pace itself alone and together they
would run into (and extend) the throttle. The client is rebuilt whenever anything it is built from changes
(a rotated app secret must sign the very next ``appsecret_proof``), and the one it replaces is closed.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

from bot.graph import GraphClient
from bot.ratelimit import UsageGovernor
from ntbcare.core.settings import Settings


class _ClientConfig(NamedTuple):
    """Everything a client is built from: a change in any of them needs a new client."""

    base_url: str
    version: str
    page_id: str
    page_token: str
    app_secret: str


_lock = threading.Lock()
_clients: dict[str, tuple[_ClientConfig, GraphClient]] = {}  # by Page id
_governors: dict[str, UsageGovernor] = {}


class PageTokenMissing(RuntimeError):
    """FB_PAGE_ACCESS_TOKEN (or the page id) is not configured: nothing can be sent."""


def graph_client(settings: Settings) -> GraphClient:
    """The process-wide client for the configured Page, rebuilt (and the old one closed) when its settings change.

    The governor stays with the Page across rebuilds: a new token or secret does not lift Meta's throttle.
    """
    if not settings.fb_page_access_token or not settings.fb_page_id:
        raise PageTokenMissing("FB_PAGE_ACCESS_TOKEN and FB_PAGE_ID are required to send replies")
    config = _ClientConfig(settings.graph_api_base_url, settings.graph_api_version, settings.fb_page_id,
                           settings.fb_page_access_token, settings.fb_app_secret)
    with _lock:
        cached = _clients.get(config.page_id)
        if cached is not None and cached[0] == config:
            return cached[1]
        governor = _governors.setdefault(config.page_id, UsageGovernor())
        client = GraphClient(config.base_url, config.version, config.page_id, config.page_token,
                             config.app_secret, governor=governor)
        _clients[config.page_id] = (config, client)
    if cached is not None:
        # A thread still inside a call on the old client finishes it; its connections are dropped afterwards.
        cached[1].close()
    return client


def close_graph_clients() -> None:
    """Close and forget every cached client (process shutdown, tests)."""
    with _lock:
        for _, client in _clients.values():
            client.close()
        _clients.clear()
        _governors.clear()
