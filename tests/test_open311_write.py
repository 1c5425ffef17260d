"""Writing through Open311: `ntbcare apikeys add|list|revoke` (the key shown once, only its hash stored), the
key checked on every POST (403 when missing, unknown or revoked), every field validated with a clear 400, a
limit per key (429 with Retry-After), and a valid request becoming an ``open311`` ticket that the same routing
takes; personal fields a client sends are not stored."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from ntbcare.cli import cli
from ntbcare.core.models import Agency, ApiKey, AuditEntry, OutboundMail, Ticket, TicketStatus
from ntbcare.web.open311 import WRITES_PER_KEY
from tests.conftest import BASE_ENV

PLN_TEXT = "Listrik padam sejak pagi di Kelurahan Pagesangan Mataram, token sudah diisi tetap mati. Tolong PLN"
VALID = {"service_code": "PUPR", "lat": "-8.583312", "long": "116.116714",
         "description": "Jalan di depan SDN 3 Sesela berlubang besar, dua motor jatuh minggu ini.",
         "first_name": "Lalu", "last_name": "Wiranata", "email": "lalu.wira@example.test", "phone": "081999888777",
         "device_id": "device-abc", "account_id": "acc-123"}


def cli_ok(database_url: str, *args: str) -> str:
    result = CliRunner().invoke(cli, list(args), env={**BASE_ENV, "DATABASE_URL": database_url, "REDIS_URL": ""})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def key(runtime, database_url: str) -> str:  # type: ignore[no-untyped-def]
    with runtime.db.scope() as s:
        s.add(Agency(code="PUPR", name="Dinas PUPR", kind="opd", emails=["pupr@ntbprov.test"]))
    return cli_ok(database_url, "apikeys", "add", "ntbcare-app").strip()


def test_keys_are_shown_once_stored_hashed_listed_and_revoked(runtime, database_url: str, key: str) -> None:  # type: ignore[no-untyped-def]
    assert len(key) >= 40
    with runtime.db.session() as s:
        [row] = s.scalars(select(ApiKey)).all()
        assert row.name == "ntbcare-app" and key not in (row.key_hash, row.prefix) and len(row.key_hash) == 64
    listed = json.loads(cli_ok(database_url, "apikeys", "list", "--json"))
    assert [(k["name"], k["active"]) for k in listed] == [("ntbcare-app", True)]
    assert key not in json.dumps(listed)
    result = CliRunner().invoke(cli, ["apikeys", "add", "ntbcare-app"],
                                env={**BASE_ENV, "DATABASE_URL": database_url, "REDIS_URL": ""})
    assert result.exit_code == 1 and "exists already" in result.output
    assert "revoked" in cli_ok(database_url, "apikeys", "revoke", "ntbcare-app")
    assert json.loads(cli_ok(database_url, "apikeys", "list", "--json"))[0]["active"] is False
    result = CliRunner().invoke(cli, ["apikeys", "revoke", "nobody"],
                                env={**BASE_ENV, "DATABASE_URL": database_url, "REDIS_URL": ""})
    assert result.exit_code == 1 and "apikeys list" in result.output


@pytest.fixture
def registry_key(runtime, database_url: str) -> str:  # type: ignore[no-untyped-def]
    """The bundled registry of agencies, each with an address to forward to, and a key."""
    from ntbcare.pipeline.bootstrap import seed_agencies
    from routing.registry import load_registry

    with runtime.db.scope() as s:
        seed_agencies(s, load_registry())
        for agency in s.scalars(select(Agency)):
            agency.emails = agency.emails or [f"{agency.code.lower()}@ntbprov.test"]
    return cli_ok(database_url, "apikeys", "add", "ntbcare-app").strip()


def test_a_valid_request_becomes_a_routed_open311_ticket(client, runtime, registry_key: str) -> None:  # type: ignore[no-untyped-def]
    key = registry_key
    response = client.post("/open311/v2/requests.json", data={**VALID, "service_code": "PUPRPKP", "api_key": key,
                                                              "description": PLN_TEXT})
    assert response.status_code == 200, response.get_data(as_text=True)
    [created] = json.loads(response.data)
    assert created["service_request_id"].startswith("NTB-") and created["service_notice"]
    with runtime.db.session() as s:
        ticket = s.scalars(select(Ticket)).one()
        assert ticket.number == created["service_request_id"] and ticket.channel == "open311"
        # The same routing as a Facebook complaint: the classifier decides (PLN), not the client's suggestion.
        assert (ticket.status, ticket.agency_code) == (TicketStatus.ROUTED, "PLN"), ticket.review_reason  # e-mail owed
        routed = s.scalars(select(AuditEntry).where(AuditEntry.action == "routed")).one()
        assert routed.ticket_id == ticket.id and routed.detail["agency"] == "PLN"
        [forward] = s.scalars(select(OutboundMail).where(OutboundMail.kind == "forward")).all()
        assert (forward.ticket_id, forward.agency_code) == (ticket.id, "PLN")
        assert set(forward.recipients) == set(s.get(Agency, "PLN").emails) and forward.recipients  # type: ignore[union-attr]
        assert forward.status == "pending"  # owed: this runtime has no SMTP_URL, the outbox keeps it
        assert ticket.attachments == [{"type": "location", "lat": -8.583312, "long": 116.116714}]
        opened = s.scalars(select(AuditEntry).where(AuditEntry.action == "opened")).one()
        assert opened.actor == "open311:ntbcare-app" and opened.detail["service_code"] == "PUPRPKP"  # a suggestion
        stored = json.dumps([ticket.text, ticket.attachments, [a.detail for a in s.scalars(select(AuditEntry))]])
        for personal in ("Lalu", "Wiranata", "lalu.wira@example.test", "081999888777", "device-abc", "acc-123"):
            assert personal not in stored
        assert s.scalars(select(ApiKey)).one().last_used_at is not None
    xml = client.post("/open311/v2/requests.xml", data={**VALID, "service_code": "PUPRPKP", "api_key": key, "lat": "",
                                                       "long": "",
                                                       "address_string": "Jl. Raya Sesela, Gunungsari"})
    assert xml.status_code == 200 and b"<service_requests><request><service_request_id>NTB-" in xml.data


@pytest.mark.parametrize(("api_key", "status"), [(None, 403), ("wrong-key", 403)])
def test_missing_or_unknown_key_is_403(client, key: str, api_key: str | None, status: int) -> None:  # type: ignore[no-untyped-def]
    data = dict(VALID) if api_key is None else {**VALID, "api_key": api_key}
    response = client.post("/open311/v2/requests.json", data=data)
    assert response.status_code == status
    assert json.loads(response.data) == [{"code": 403, "description": "api_key is missing, unknown or revoked"}]


def test_a_revoked_key_stops_working(client, database_url: str, key: str) -> None:  # type: ignore[no-untyped-def]
    cli_ok(database_url, "apikeys", "revoke", "ntbcare-app")
    assert client.post("/open311/v2/requests.json", data={**VALID, "api_key": key}).status_code == 403


@pytest.mark.parametrize(("change", "says"), [
    ({"service_code": ""}, "service_code is required"),
    ({"service_code": "NOPE"}, "service_code 'NOPE' is not a service"),
    ({"lat": "abc"}, "lat must be a decimal number"),
    ({"lat": "91"}, "lat must lie between"),
    ({"long": "nan"}, "long must lie between"),
    ({"long": ""}, "lat and long must be given together"),
    ({"lat": "", "long": ""}, "a location is required"),
    ({"lat": "", "long": "", "address_id": "77"}, "address_id is not supported"),
    ({"description": "   "}, "description is required"),
    ({"description": "x" * 8001}, "description is longer than 8000"),
    ({"address_string": "y" * 501}, "address_string is longer than 500"),
    ({"jurisdiction_id": "jakarta.go.id"}, "jurisdiction_id not found"),
])
def test_every_field_is_validated_with_a_clear_400(client, runtime, key: str, change: dict, says: str) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/open311/v2/requests.json", data={**VALID, **change, "api_key": key})
    [error] = json.loads(response.data)
    assert response.status_code == error["code"] == (404 if "jurisdiction" in says else 400)
    assert says in error["description"]
    with runtime.db.session() as s:
        assert s.scalars(select(Ticket)).first() is None


def test_writes_are_limited_per_key(client, runtime, database_url: str, key: str) -> None:  # type: ignore[no-untyped-def]
    other = cli_ok(database_url, "apikeys", "add", "web-form").strip()
    for _ in range(WRITES_PER_KEY.amount):
        assert client.post("/open311/v2/requests.json", data={"api_key": key}).status_code == 400
    refused = client.post("/open311/v2/requests.json", data={**VALID, "api_key": key})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert json.loads(refused.data)[0]["code"] == 429
    assert client.post("/open311/v2/requests.json", data={"api_key": other}).status_code == 400  # its own budget


@pytest.mark.parametrize(("change", "says"), [
    ({"description": "Lampu jalan\x0b mati"}, "description contains a control character (U+000B)"),
    ({"address_string": "Jl. Raya\x00 Sesela"}, "address_string contains a control character (U+0000)"),
    ({"description": "Jalan rusak \u202edi Sesela"}, "description contains a control character (U+202E)"),
    ({"attribute[WARNA]": "merah"}, "attribute[WARNA] is not accepted: no service of this server has attributes"),
    ({"media_url": "javascript:alert(1)"}, "media_url must be an absolute http or https URL"),
    ({"media_url": "ftp://foto.example.test/jalan.jpg"}, "media_url must be an absolute http or https URL"),
    ({"media_url": "https://foto.example.test/" + "a" * 2000}, "media_url is longer than 2000 characters"),
])
def test_control_characters_attributes_and_bad_media_urls_are_a_clear_400(client, runtime, key: str, change: dict,  # type: ignore[no-untyped-def]
                                                                         says: str) -> None:
    response = client.post("/open311/v2/requests.json", data={**VALID, **change, "api_key": key})
    assert response.status_code == 400, response.get_data(as_text=True)
    [error] = json.loads(response.data)
    assert error["code"] == 400 and says in error["description"]
    with runtime.db.session() as s:
        assert s.scalars(select(Ticket)).first() is None


def test_a_line_break_from_a_web_form_is_plain_text(client, runtime, key: str) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/open311/v2/requests.json",
                           data={**VALID, "api_key": key, "description": "Jalan rusak.\r\nDua motor jatuh.\tTolong."})
    assert response.status_code == 200, response.get_data(as_text=True)


def test_a_media_url_is_kept_for_the_agency_and_never_published(client, runtime, key: str) -> None:  # type: ignore[no-untyped-def]
    from ntbcare.pipeline.accountability.listing import published, views

    url = "https://foto.example.test/jalan-sesela.jpg"
    assert client.post("/open311/v2/requests.json", data={**VALID, "api_key": key, "media_url": url}).status_code == 200
    with runtime.db.scope() as s:
        ticket = s.scalars(select(Ticket)).one()
        assert {"type": "image", "url": url} in ticket.attachments
        ticket.status, ticket.agency_code = TicketStatus.FORWARDED, "PUPR"  # as if routed: now published
    with runtime.db.session() as s:
        [view] = views(s, list(s.scalars(published())))
        assert view.lat == -8.583  # the location is, rounded
    number = view.service_request_id
    for fmt in ("json", "xml"):
        body = client.get(f"/open311/v2/requests/{number}.{fmt}").get_data(as_text=True)
        assert number in body and "foto.example.test" not in body


def test_a_control_character_in_a_stored_text_never_breaks_requests_xml(client, runtime, key: str) -> None:  # type: ignore[no-untyped-def]
    """Texts from Facebook are stored as written; one of them must not make the XML feed unreadable."""
    import xml.etree.ElementTree as ET

    from ntbcare.core.models import AgencyAnswer, utcnow

    with runtime.db.scope() as s:
        ticket = Ticket(number="NTB-2026-000777", status=TicketStatus.ANSWERED, channel="comment",
                        text="Lampu jalan\x0b mati\x1f di Ampenan\ufffe", agency_code="PUPR", origin_id="c-777",
                        opened_at=utcnow())
        s.add(ticket)
        s.flush()
        s.add(AgencyAnswer(ticket_id=ticket.id, agency_code="PUPR", action="answer", text="Sudah\x0c diperbaiki",
                           link_version=1))
    for path in ("/open311/v2/requests.xml", "/open311/v2/requests/NTB-2026-000777.xml"):
        root = ET.fromstring(client.get(path).data)  # parses: nothing XML 1.0 forbids was written
        [request] = [r for r in root if r.findtext("service_request_id") == "NTB-2026-000777"]
        assert request.findtext("description") == "Lampu jalan mati di Ampenan"
        assert request.findtext("status_notes") == "Sudah diperbaiki"


def test_a_revoked_keys_name_gets_a_fresh_key_and_an_active_one_must_be_revoked_first(  # type: ignore[no-untyped-def]
        client, runtime, database_url: str, key: str) -> None:
    env = {**BASE_ENV, "DATABASE_URL": database_url, "REDIS_URL": ""}
    refused = CliRunner().invoke(cli, ["apikeys", "add", "ntbcare-app"], env=env)
    assert refused.exit_code == 1 and "is active: revoke it first" in refused.output
    assert "apikeys revoke ntbcare-app" in refused.output
    with runtime.db.session() as s:
        old_hash = s.scalars(select(ApiKey)).one().key_hash
    cli_ok(database_url, "apikeys", "revoke", "ntbcare-app")
    result = CliRunner().invoke(cli, ["apikeys", "add", "ntbcare-app"], env=env)
    assert result.exit_code == 0, result.output
    fresh = result.stdout.strip()
    assert fresh != key and "revoked key of ntbcare-app was replaced" in result.stderr
    with runtime.db.session() as s:
        [row] = s.scalars(select(ApiKey)).all()
        assert row.key_hash != old_hash and row.revoked_at is None and row.last_used_at is None
    assert json.loads(cli_ok(database_url, "apikeys", "list", "--json"))[0]["active"] is True
    assert client.post("/open311/v2/requests.json", data={**VALID, "api_key": key}).status_code == 403  # old: never
    assert client.post("/open311/v2/requests.json", data={**VALID, "api_key": fresh}).status_code == 200
