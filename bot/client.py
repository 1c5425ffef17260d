"""One Graph client per process and Page, so that every sender thread shares one usage governor.

Meta counts calls per Page; if each job built its own client, each would pace itself alone and together they
would run into (and extend) the throttle.
"""

from __future__ import annotations

import threading

from bot.graph import GraphClient
from bot.ratelimit import UsageGovernor
from ntbcare.core.settings import Settings

_lock = threading.Lock()
_clients: dict[tuple[str, str, str, str], GraphClient] = {}
_governors: dict[str, UsageGovernor] = {}


class PageTokenMissing(RuntimeError):
    """FB_PAGE_ACCESS_TOKEN (or the page id) is not configured: nothing can be sent."""


def graph_client(settings: Settings) -> GraphClient:
    """The process-wide client for the configured Page (rebuilt when the token or base URL changes)."""
    if not settings.fb_page_access_token or not settings.fb_page_id:
        raise PageTokenMissing("FB_PAGE_ACCESS_TOKEN and FB_PAGE_ID are required to send replies")
    key = (settings.graph_api_base_url, settings.graph_api_version, settings.fb_page_id,
           settings.fb_page_access_token)
    with _lock:
        client = _clients.get(key)
        if client is None:
            governor = _governors.setdefault(settings.fb_page_id, UsageGovernor())
            client = GraphClient(settings.graph_api_base_url, settings.graph_api_version, settings.fb_page_id,
                                 settings.fb_page_access_token, settings.fb_app_secret, governor=governor)
            _clients[key] = client
        return client


def close_graph_clients() -> None:
    """Close and forget every cached client (process shutdown, tests)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
        _governors.clear()
