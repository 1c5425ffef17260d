"""Helpers for the operator console's tests: make an operator, sign in like a browser, read a form's token."""

from __future__ import annotations

import re
from typing import Any

from ntbcare.core.db import Database
from ntbcare.core.models import OperatorRole
from ntbcare.pipeline import operator_accounts

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_operator(db: Database, username: str, password: str, role: str = OperatorRole.OPERATOR,
                  name: str = "") -> None:
    """Create an operator account directly in the database (as `ntbcare operators add` does)."""
    with db.scope() as session:
        operator_accounts.add(session, username, password, role=role, name=name)


def csrf_token(client: Any, path: str = "/ops/login") -> str:
    """The CSRF token of the first form on ``path``, after its redirects (the login page of someone signed in
    goes to the dashboard); it is the session's token, so any form's works for any form."""
    match = CSRF_FIELD.search(client.get(path, follow_redirects=True).get_data(as_text=True))
    assert match, f"no form with a CSRF token on {path}"
    return match.group(1)


def login(client: Any, username: str, password: str) -> Any:
    """Sign in through the login form, as a browser does; returns the response (303 to /ops/ on success)."""
    return client.post("/ops/login", data={"csrf_token": csrf_token(client), "username": username,
                                           "password": password})
