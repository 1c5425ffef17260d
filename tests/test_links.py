"""Signed agency links: only the genuine, unexpired, current link opens a ticket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from itsdangerous import URLSafeTimedSerializer

from ntbcare.core.links import (
    LINK_SALT,
    AgencyLinkClaims,
    LinkExpired,
    LinkInvalid,
    agency_link_url,
    make_agency_token,
    read_agency_token,
)

KEY = "test-link-signing-key-0123456789"
THIRTY_DAYS = 30 * 24 * 3600


def test_round_trip_returns_the_ticket_agency_and_version() -> None:
    token = make_agency_token(KEY, 123, "DIKES", 2)
    claims = read_agency_token(KEY, token, THIRTY_DAYS)
    assert (claims.ticket_id, claims.agency_code, claims.link_version) == (123, "DIKES", 2)
    assert abs(datetime.now(UTC) - claims.issued_at) < timedelta(seconds=5)


def test_tampered_token_is_rejected() -> None:
    token = make_agency_token(KEY, 123, "DIKES", 2)
    other = make_agency_token(KEY, 124, "DIKES", 2)
    forged = other.split(".")[0] + "." + ".".join(token.split(".")[1:])
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (forged, flipped, token[:-4], "", "not-a-token"):
        with pytest.raises(LinkInvalid):
            read_agency_token(KEY, bad, THIRTY_DAYS)


def test_token_signed_with_another_key_or_salt_is_rejected() -> None:
    with pytest.raises(LinkInvalid):
        read_agency_token(KEY, make_agency_token("another-key", 123, "DIKES", 2), THIRTY_DAYS)
    other_purpose = URLSafeTimedSerializer(KEY, salt="password-reset").dumps({"t": 123, "a": "DIKES", "v": 2})
    with pytest.raises(LinkInvalid):
        read_agency_token(KEY, other_purpose, THIRTY_DAYS)


def test_genuine_token_with_a_foreign_payload_is_rejected() -> None:
    odd = URLSafeTimedSerializer(KEY, salt=LINK_SALT).dumps({"t": "123", "a": "DIKES", "v": 2})
    with pytest.raises(LinkInvalid):
        read_agency_token(KEY, odd, THIRTY_DAYS)


def test_expired_token_raises_with_claims_for_a_helpful_page() -> None:
    token = make_agency_token(KEY, 123, "DIKES", 2)
    issued = read_agency_token(KEY, token, THIRTY_DAYS).issued_at
    assert read_agency_token(KEY, token, 3600, now=issued + timedelta(seconds=3600)).ticket_id == 123
    with pytest.raises(LinkExpired) as caught:
        read_agency_token(KEY, token, 3600, now=issued + timedelta(seconds=3601))
    assert caught.value.claims == AgencyLinkClaims(123, "DIKES", 2, issued)


def test_token_from_the_future_is_rejected() -> None:
    token = make_agency_token(KEY, 123, "DIKES", 2)
    with pytest.raises(LinkInvalid):
        read_agency_token(KEY, token, THIRTY_DAYS, now=datetime.now(UTC) - timedelta(hours=1))


def test_bumped_link_version_is_visible_to_the_caller() -> None:
    old_link = make_agency_token(KEY, 123, "DIKES", 1)
    current_version_in_db = 2
    assert read_agency_token(KEY, old_link, THIRTY_DAYS).link_version != current_version_in_db


def test_key_rotation_reads_old_links_and_signs_with_the_newest_key() -> None:
    old_token = make_agency_token("old-key", 123, "DIKES", 1)
    assert read_agency_token(["old-key", KEY], old_token, THIRTY_DAYS).ticket_id == 123
    new_token = make_agency_token(["old-key", KEY], 123, "DIKES", 1)
    assert read_agency_token(KEY, new_token, THIRTY_DAYS).ticket_id == 123


def test_invalid_inputs_are_refused_when_making_a_token() -> None:
    for args in ((0, "DIKES", 1), (True, "DIKES", 1), (5, "", 1), (5, "DIKES", -1)):
        with pytest.raises(ValueError):
            make_agency_token(KEY, *args)
    with pytest.raises(ValueError):
        make_agency_token("", 5, "DIKES", 1)


def test_link_url_is_built_from_the_configured_base_only() -> None:
    token = make_agency_token(KEY, 123, "DIKES", 2)
    assert agency_link_url("https://care.ntbprov.go.id", token) == f"https://care.ntbprov.go.id/a/{token}"
    assert agency_link_url("https://ntbprov.go.id/care/", token) == f"https://ntbprov.go.id/care/a/{token}"
    for bad_base in ("care.ntbprov.go.id", "javascript:alert(1)", "https://x.id/?next=1", ""):
        with pytest.raises(ValueError, match="PUBLIC_BASE_URL"):
            agency_link_url(bad_base, token)
