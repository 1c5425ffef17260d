"""Signed agency links: only the genuine, unexpired, current link opens a ticket; reassigning revokes."""

from __future__ import annotations

import base64
import hashlib
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
from ntbcare.core.models import Agency, Ticket, TicketStatus, utcnow
from routing import decisions as routing_decisions

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
    odd = URLSafeTimedSerializer(KEY, salt=LINK_SALT, signer_kwargs={"digest_method": hashlib.sha256}).dumps(
        {"t": "123", "a": "DIKES", "v": 2})
    with pytest.raises(LinkInvalid):
        read_agency_token(KEY, odd, THIRTY_DAYS)


def test_links_are_signed_with_hmac_sha256() -> None:
    token = make_agency_token(KEY, 123, "DIKES", 2)
    sha256 = URLSafeTimedSerializer(KEY, salt=LINK_SALT, signer_kwargs={"digest_method": hashlib.sha256})
    assert sha256.loads(token) == {"t": 123, "a": "DIKES", "v": 2}
    signature = token.rsplit(".", 1)[1]
    assert len(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))) == hashlib.sha256().digest_size


def test_link_signed_the_old_way_with_sha1_is_refused() -> None:
    """The attack: a link minted with itsdangerous' SHA-1 default (as before) with the right key and salt."""
    old_way = URLSafeTimedSerializer(KEY, salt=LINK_SALT).dumps({"t": 123, "a": "DIKES", "v": 2})
    with pytest.raises(LinkInvalid):
        read_agency_token(KEY, old_way, THIRTY_DAYS)
    with pytest.raises(LinkInvalid):  # nor during a key rotation
        read_agency_token(["old-key", KEY], old_way, THIRTY_DAYS)


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


def test_reassignment_revokes_the_old_link_and_a_new_link_works(client, runtime) -> None:  # type: ignore[no-untyped-def]
    """DIKES → PLN → DIKES: the link DIKES first received must stay dead even though DIKES has the ticket again."""
    secret = runtime.settings.secret_key
    with runtime.db.scope() as session:
        session.add_all([Agency(code=code, name=name, kind="opd", emails=[f"pengaduan@{code.lower()}.test"])
                         for code, name in (("DIKES", "Dinas Kesehatan"), ("PLN", "PLN UP3 Mataram"))])
        ticket = Ticket(number="NTB-2026-000001", status=TicketStatus.FORWARDED, channel="comment",
                        text="Puskesmas tutup sejak pagi", origin_id="555000000000111_888000000000001",
                        opened_at=utcnow(), agency_code="DIKES", link_version=1)
        session.add(ticket)
        session.flush()
        ticket_id = ticket.id
    old_link = make_agency_token(secret, ticket_id, "DIKES", 1)
    assert client.get(f"/a/{old_link}").status_code == 200

    for agency in ("PLN", "DIKES"):  # an operator reassigns the ticket, then gives it back
        with runtime.db.scope() as session:
            routing_decisions.assign(session, session.get(Ticket, ticket_id), agency, actor="operator:test")
    with runtime.db.session() as session:
        current_version_in_db = session.get(Ticket, ticket_id).link_version
    assert read_agency_token(secret, old_link, THIRTY_DAYS).link_version != current_version_in_db

    refused = client.get(f"/a/{old_link}")
    assert refused.status_code == 410 and "Puskesmas tutup" not in refused.get_data(as_text=True)
    new_link = make_agency_token(secret, ticket_id, "DIKES", current_version_in_db)
    opened = client.get(f"/a/{new_link}")
    assert opened.status_code == 200 and "Puskesmas tutup" in opened.get_data(as_text=True)


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
