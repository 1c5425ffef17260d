"""`ntbcare facebook check`: is Facebook still set up to send us the page's webhooks and accept our replies?

Facebook unsubscribes a page whose webhook kept failing and expires or strips tokens without telling anyone;
these checks ask the Graph API what it has now, each with what to do when it is wrong:

1. the app the page token belongs to (``GET /app`` with the page token);
2. the page token: valid, a page token of this page, not expiring soon, and its permissions
   (``GET /debug_token`` with the app token ``{app-id}|{app-secret}``);
3. the page's subscription to our app and its fields (``GET /{page-id}/subscribed_apps``, page token);
4. the app's webhook for pages: active, our callback URL, its fields (``GET /{app-id}/subscriptions``, app token).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from ntbcare.core.settings import Settings

PERMISSIONS = ("pages_manage_metadata", "pages_show_list", "pages_messaging", "pages_read_engagement",
               "pages_manage_engagement")
FIELDS = ("feed", "messages", "messaging_postbacks", "message_echoes", "message_deliveries", "message_reads")
EXPIRY_WARNING = timedelta(days=14)
TIMEOUT = (5.0, 15.0)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Graph:
    def __init__(self, settings: Settings, session: requests.Session) -> None:
        self.base = f"{settings.graph_api_base_url}/{settings.graph_api_version}"
        self.secret = settings.fb_app_secret
        self.session = session

    def get(self, path: str, token: str, **params: str) -> dict[str, Any]:
        proof = hmac.new(self.secret.encode(), token.encode(), hashlib.sha256).hexdigest()
        try:
            response = self.session.get(f"{self.base}/{path}", timeout=TIMEOUT,
                                        params={**params, "access_token": token, "appsecret_proof": proof})
        except requests.RequestException as exc:
            raise GraphUnreachable(f"the Graph API did not answer ({type(exc).__name__})") from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            raise GraphRefused(f"HTTP {response.status_code} without a JSON answer")
        error = payload.get("error")
        if isinstance(error, dict) or not response.ok:
            error = error if isinstance(error, dict) else {}
            raise GraphRefused(f"(#{error.get('code')}) {error.get('message') or response.status_code}")
        return payload


class GraphUnreachable(RuntimeError):
    pass


class GraphRefused(RuntimeError):
    pass


def run_checks(settings: Settings, session: requests.Session | None = None,
               now: datetime | None = None) -> list[Check]:
    """Every check, in order; a check that cannot run (an earlier one failed) says so instead."""
    if not settings.fb_page_access_token or not settings.fb_page_id:
        return [Check("configuration", False, "FB_PAGE_ACCESS_TOKEN or FB_PAGE_ID is not set",
                      "put the page id and a page access token in the environment or .env (README: Registering "
                      "the webhook with Facebook)")]
    graph = _Graph(settings, session or requests.Session())
    token = settings.fb_page_access_token
    checks: list[Check] = []
    try:
        app = graph.get("app", token)
    except (GraphUnreachable, GraphRefused) as exc:
        return [Check("page token", False, f"Facebook refused the page token: {exc}",
                      "create a new long-lived page token (a system user's in Business Settings), put it in "
                      "FB_PAGE_ACCESS_TOKEN, restart, then run `ntbcare replies resume`")]
    app_id = str(app.get("id", ""))
    app_token = f"{app_id}|{settings.fb_app_secret}"
    name = f"{app['name']} ({app_id})" if app.get("name") else app_id
    checks.append(Check("app", True, f"the page token belongs to app {name}"))
    checks.extend(_token_checks(graph, settings, token, app_token, now or datetime.now(UTC)))
    checks.append(_page_subscription(graph, settings, token, app_id))
    checks.append(_app_subscription(graph, settings, app_id, app_token))
    return checks


def _token_checks(graph: _Graph, settings: Settings, token: str, app_token: str, now: datetime) -> list[Check]:
    new_token = ("create a new page token with these permissions (Graph API Explorer or a system user in Business "
                 "Settings), put it in FB_PAGE_ACCESS_TOKEN, restart, then run `ntbcare replies resume`")
    try:
        data = graph.get("debug_token", app_token, input_token=token).get("data") or {}
    except GraphUnreachable as exc:
        return [Check("page token", False, str(exc), "check the network to graph.facebook.com, then run again")]
    except GraphRefused as exc:
        return [Check("page token", False, f"debug_token refused: {exc}",
                      "check FB_APP_SECRET: it must be the secret of the app the page token belongs to")]
    checks = []
    valid = bool(data.get("is_valid"))
    kind, profile = str(data.get("type", "")).upper(), str(data.get("profile_id", ""))
    expires = data.get("expires_at") or data.get("data_access_expires_at") or 0
    detail = f"valid: {valid}; type {kind or '?'}; page {profile or '?'}"
    problem = ""
    if not valid:
        problem = "the token is not valid any more"
    elif kind != "PAGE" or (profile and profile != settings.fb_page_id):
        problem = f"not a page token of page {settings.fb_page_id}"
    elif isinstance(expires, int) and expires and datetime.fromtimestamp(expires, UTC) - now < EXPIRY_WARNING:
        problem = f"expires on {datetime.fromtimestamp(expires, UTC):%Y-%m-%d}"
    if isinstance(expires, int) and expires:
        detail += f"; expires {datetime.fromtimestamp(expires, UTC):%Y-%m-%d}"
    else:
        detail += "; never expires"
    checks.append(Check("page token", not problem, f"{detail}" + (f" ({problem})" if problem else ""),
                        new_token if problem else ""))
    scopes = [str(scope) for scope in data.get("scopes") or []]
    missing = [p for p in PERMISSIONS if p not in scopes]
    checks.append(Check("permissions", not missing, "granted: " + (", ".join(sorted(scopes)) or "none")
                        + (f"; missing: {', '.join(missing)}" if missing else ""),
                        new_token if missing else ""))
    return checks


def _page_subscription(graph: _Graph, settings: Settings, token: str, app_id: str) -> Check:
    fix = (f"subscribe the page again: POST /{settings.fb_page_id}/subscribed_apps?subscribed_fields="
           f"{','.join(FIELDS)} with the page token (README: Registering the webhook with Facebook, step 3)")
    try:
        apps = graph.get(f"{settings.fb_page_id}/subscribed_apps", token).get("data") or []
    except (GraphUnreachable, GraphRefused) as exc:
        return Check("page subscription", False, f"cannot read the page's subscribed apps: {exc}", fix)
    ours = next((a for a in apps if isinstance(a, dict) and str(a.get("id")) == app_id), None)
    if ours is None:
        return Check("page subscription", False, "our app is not subscribed to the page: no webhook will arrive",
                     fix)
    fields = [str(f) for f in ours.get("subscribed_fields") or []]
    missing = [f for f in FIELDS if f not in fields]
    return Check("page subscription", not missing, "subscribed fields: " + (", ".join(fields) or "none")
                 + (f"; missing: {', '.join(missing)}" if missing else ""), fix if missing else "")


def _app_subscription(graph: _Graph, settings: Settings, app_id: str, app_token: str) -> Check:
    expected = f"{settings.public_base_url}/webhook"
    fix = (f"in the app dashboard > Webhooks > Page: callback URL {expected}, verify token FB_VERIFY_TOKEN, "
           f"and subscribe the fields {', '.join(FIELDS)}")
    try:
        subscriptions = graph.get(f"{app_id}/subscriptions", app_token).get("data") or []
    except (GraphUnreachable, GraphRefused) as exc:
        return Check("app webhook", False, f"cannot read the app's webhook subscriptions: {exc}", fix)
    page = next((s for s in subscriptions if isinstance(s, dict) and s.get("object") == "page"), None)
    if page is None:
        return Check("app webhook", False, "the app has no webhook for pages", fix)
    fields = [str(f.get("name") if isinstance(f, dict) else f) for f in page.get("fields") or []]
    missing = [f for f in FIELDS if f not in fields]
    problems = []
    if not page.get("active"):
        problems.append("not active")
    if page.get("callback_url") != expected:
        problems.append(f"callback URL is {page.get('callback_url')!r}, expected {expected!r}")
    if missing:
        problems.append(f"missing fields: {', '.join(missing)}")
    detail = f"callback {page.get('callback_url')}; fields: {', '.join(fields) or 'none'}"
    return Check("app webhook", not problems, detail + (f" ({'; '.join(problems)})" if problems else ""),
                 fix if problems else "")
