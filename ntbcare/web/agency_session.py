"""The agency inbox session: who signed in (the address), for which agencies, which one they act for now,
and since when. Kept in Flask's signed session cookie (``HttpOnly``, ``SameSite=Lax``, ``Secure`` on https).

Signing in clears whatever the browser's session held and starts a new one with a fresh random id, so a
session fixed before sign-in (or its CSRF token) is worth nothing after it. A session older than
``AGENCY_SESSION_HOURS`` is over: the next page asks for a new link.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from flask import session

from ntbcare.pipeline.agency_access import Grant, now_epoch, session_expired
from ntbcare.web.context import current_runtime
from ntbcare.web.errors import Wording

SESSION_KEY = "agency_inbox"
ERRORS = Wording(
    csrf="Formulir kedaluwarsa atau tidak sah. Muat ulang halamannya, lalu kirim ulang.",
    by_status={404: "Halaman tidak ditemukan di kotak laporan instansi. Periksa kembali alamatnya."},
)


@dataclass(frozen=True)
class AgencySession:
    email: str
    agencies: tuple[tuple[str, str], ...]  # (code, name) the address may act for
    code: str | None  # the agency chosen; None until an address with several agencies chooses
    signed_in_at: float

    def may_act_for(self, code: str) -> bool:
        return any(known == code for known, _ in self.agencies)


def start(grant: Grant) -> bool:
    """Sign in: drop the old session whole and start a new one for ``grant``; True when an agency must
    still be chosen (the address is a contact of several)."""
    session.clear()
    chosen = grant.agencies[0][0] if len(grant.agencies) == 1 else None
    session[SESSION_KEY] = {"sid": secrets.token_urlsafe(24), "email": grant.email, "code": chosen,
                            "agencies": [list(pair) for pair in grant.agencies], "at": now_epoch()}
    return chosen is None


def current_or_none() -> tuple[AgencySession | None, bool]:
    """The live session, and whether a session existed but has expired (then it is cleared)."""
    data = session.get(SESSION_KEY)
    if not isinstance(data, dict):
        return None, False
    try:
        signed_in = AgencySession(email=str(data["email"]), code=data.get("code"),
                                  agencies=tuple((str(code), str(name)) for code, name in data["agencies"]),
                                  signed_in_at=float(data["at"]))
    except (KeyError, TypeError, ValueError):
        session.clear()
        return None, False
    if session_expired(signed_in.signed_in_at, current_runtime().settings.agency_session_hours):
        session.clear()
        return None, True
    return signed_in, False


def choose(code: str) -> bool:
    """Act for ``code`` from now on, if this address may."""
    signed_in, _ = current_or_none()
    if signed_in is None or not signed_in.may_act_for(code):
        return False
    session[SESSION_KEY] = {**session[SESSION_KEY], "code": code}
    return True


def end() -> None:
    session.clear()
