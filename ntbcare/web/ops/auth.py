"""Who is signed in to the console: the session cookie, the check every ``/ops`` request passes, and the
decorators views use to say who may use them.

The cookie holds only a random token (``HttpOnly``, ``SameSite=Lax``, ``Secure`` when the public address is
https, scoped to ``/ops``); the session itself is a row (:mod:`ntbcare.pipeline.operator_accounts`), so
logging out or disabling an operator ends it at once. The blueprint's ``before_request`` resolves the cookie
for every endpoint but the login page, so a view cannot be reached without a session even if it forgets its
decorator; the decorators add the role check.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import abort, g, redirect, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from ntbcare.pipeline import operator_accounts as accounts
from ntbcare.pipeline.operator_accounts import OperatorView
from ntbcare.web.context import current_runtime

COOKIE = "ntbcare_ops"
COOKIE_PATH = "/ops"
PUBLIC_ENDPOINTS = {"ops.login", "ops.login_submit"}
P = ParamSpec("P")
R = TypeVar("R")


def session_token() -> str:
    return request.cookies.get(COOKIE, "")


def load_operator() -> BaseResponse | None:
    """Resolve the cookie into ``g.operator``; a request without a live session goes to the login page."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    runtime = current_runtime()
    token = session_token()
    with runtime.db.session() as db_session:
        state = accounts.resolve(db_session, token, idle_minutes=runtime.settings.ops_idle_minutes)
    if state.operator is None:
        response = redirect(url_for("ops.login", m="expired" if state.expired else None), code=303)
        if token:
            forget_cookie(response)
        return response
    if state.touch:
        with runtime.db.scope() as db_session:
            accounts.touch_session(db_session, token)
    g.operator = state.operator
    return None


def set_cookie(response: BaseResponse, token: str) -> None:
    https = current_runtime().settings.public_base_url.startswith("https://")
    response.set_cookie(COOKIE, token, path=COOKIE_PATH, httponly=True, samesite="Lax", secure=https)


def forget_cookie(response: BaseResponse) -> None:
    https = current_runtime().settings.public_base_url.startswith("https://")
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="Lax", secure=https)


def rotate_csrf() -> None:
    """A new CSRF token after login: one planted in the browser before it is worth nothing after."""
    session.pop("csrf_token", None)


def current_operator() -> OperatorView:
    """The operator of this request (only inside ``/ops`` views past the session check)."""
    operator = g.get("operator")
    if not isinstance(operator, OperatorView):
        raise RuntimeError("no operator signed in: current_operator() is for /ops views only")
    return operator


def operator_required(view: Callable[P, R]) -> Callable[P, R | BaseResponse]:
    """Any signed-in operator (the blueprint has already checked; this documents it and checks again)."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | BaseResponse:
        if not isinstance(g.get("operator"), OperatorView):
            return redirect(url_for("ops.login"), code=303)
        return view(*args, **kwargs)

    return wrapper


def supervisor_required(view: Callable[P, R]) -> Callable[P, R | BaseResponse]:
    """A supervisor only; an operator gets a 403 page."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | BaseResponse:
        operator = g.get("operator")
        if not isinstance(operator, OperatorView):
            return redirect(url_for("ops.login"), code=303)
        if not operator.is_supervisor:
            abort(403)
        return view(*args, **kwargs)

    return wrapper
