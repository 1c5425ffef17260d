"""Open311 GeoReport v2 as a client sees it: discovery, services (one per routing target), requests with the
spec's field list in JSON and XML, its parameters (ids override, service_code, status, start/end dates),
defaults and limits (90 days, 1000 requests), and the spec's error array for 400 and 404."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest

from ntbcare.core.models import Ticket, utcnow
from ntbcare.pipeline.accountability.cache import clear_cache
from ntbcare.web.open311 import clear_read_cache
from tests.public_seed import seed_month

# GeoReport v2's service request, field by field and in the spec's order (shared/anchors.md §4), written out
# here rather than taken from the module under test.
SPEC_REQUEST_FIELDS = ["service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                       "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
                       "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url"]
SPAN = "start_date=2026-11-15T00:00:00%2B08:00&end_date=2027-01-01T00:00:00%2B08:00"


@pytest.fixture
def seeded(client, runtime):  # type: ignore[no-untyped-def]
    seed_month(runtime.db, runtime.settings)
    clear_cache()
    clear_read_cache()
    yield client, runtime
    clear_read_cache()


def get_json(client, path: str, status: int = 200):  # type: ignore[no-untyped-def]
    response = client.get(path)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    return json.loads(response.data)


def test_discovery_and_services(seeded) -> None:  # type: ignore[no-untyped-def]
    client, _ = seeded
    discovery = get_json(client, "/open311/v2/discovery.json")
    [endpoint] = discovery["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2") and "text/xml" in endpoint["formats"]
    root = ET.fromstring(client.get("/open311/v2/discovery.xml").data)
    assert root.tag == "discovery" and root.findtext("changeset") == discovery["changeset"]
    [endpoints] = root.findall("endpoints")
    [xml_endpoint] = endpoints.findall("endpoint")
    assert xml_endpoint.findtext("specification") == "http://wiki.open311.org/GeoReport_v2"
    assert xml_endpoint.findtext("url") == endpoint["url"] and xml_endpoint.findtext("type") == "production"
    assert [f.text for f in xml_endpoint.findall("formats/format")] == ["application/json", "text/xml"]
    services = get_json(client, "/open311/v2/services.json")
    assert [s["service_code"] for s in services] == ["DINKES", "DISHUB", "PUPR"]
    assert set(services[0]) == {"service_code", "service_name", "description", "metadata", "type", "keywords",
                                "group"}
    assert services[0]["metadata"] is False and services[0]["type"] == "realtime"
    root = ET.fromstring(client.get("/open311/v2/services.xml").data)
    assert root.tag == "services" and [e.findtext("service_code") for e in root] == ["DINKES", "DISHUB", "PUPR"]


def test_requests_carry_the_spec_fields(seeded) -> None:  # type: ignore[no-untyped-def]
    client, _ = seeded
    requests = get_json(client, f"/open311/v2/requests.json?{SPAN}")
    assert [r["service_request_id"] for r in requests][:2] == ["NTB-2026-000002", "NTB-2026-000006"]  # newest first
    t1 = next(r for r in requests if r["service_request_id"] == "NTB-2026-000001")
    assert list(t1) == SPEC_REQUEST_FIELDS
    assert t1["status"] == "closed" and t1["service_code"] == "DINKES"
    assert t1["service_name"] == t1["agency_responsible"] == "Dinas Kesehatan"
    assert t1["requested_datetime"] == "2026-12-04T15:00:00+08:00"
    assert t1["expected_datetime"] == "2026-12-14T15:00:00+08:00"  # 48 working hours after Fri 15:00
    assert t1["address"] == "Sesela, Lombok Barat" and t1["media_url"] is None
    assert t1["status_notes"].startswith("Sudah kami cek, Ibu [nama disamarkan].")
    open_only = get_json(client, f"/open311/v2/requests.json?{SPAN}&status=open")
    assert [r["service_request_id"] for r in open_only] == ["NTB-2026-000005"]
    assert get_json(client, f"/open311/v2/requests.json?{SPAN}&service_code=PUPR") == []


def test_xml_has_the_same_requests(seeded) -> None:  # type: ignore[no-untyped-def]
    client, _ = seeded
    response = client.get(f"/open311/v2/requests.xml?{SPAN}")
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    root = ET.fromstring(response.data)
    assert root.tag == "service_requests"
    assert [child.tag for child in root[0]] == SPEC_REQUEST_FIELDS
    as_json = get_json(client, f"/open311/v2/requests.json?{SPAN}")
    assert [e.findtext("service_request_id") for e in root] == [r["service_request_id"] for r in as_json]
    one = ET.fromstring(client.get("/open311/v2/requests/NTB-2026-000004.xml").data)
    assert one[0].findtext("status") == "closed" and one[0].findtext("description")


def test_ids_override_other_parameters_and_unknown_ids_are_404(seeded) -> None:  # type: ignore[no-untyped-def]
    client, _ = seeded
    listed = get_json(client, "/open311/v2/requests.json?service_request_id=NTB-2026-000001,ntb-2026-000005,"
                              "NTB-2026-000008&status=closed&service_code=PUPR")
    assert sorted(r["service_request_id"] for r in listed) == ["NTB-2026-000001", "NTB-2026-000005"]  # 8 withdrawn
    [one] = get_json(client, "/open311/v2/requests/NTB-2026-000003.json")
    assert one["service_request_id"] == "NTB-2026-000003"
    for hidden in ("NTB-2026-000008", "NTB-2026-000009", "NTB-2026-000010", "NTB-2026-999999"):
        errors = get_json(client, f"/open311/v2/requests/{hidden}.json", status=404)
        assert errors == [{"code": 404, "description": f"service_request_id {hidden!r} not found"}]
    xml = client.get("/open311/v2/requests/NTB-2026-000009.xml")
    assert xml.status_code == 404
    root = ET.fromstring(xml.data)
    assert root.tag == "errors" and root[0].tag == "error" and root[0].findtext("code") == "404"


@pytest.mark.parametrize("query", [
    "start_date=yesterday", "end_date=2026-13-01", "status=pending",
    "start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z",  # more than 90 days
    "start_date=2026-06-01T00:00:00Z&end_date=2026-05-01T00:00:00Z", "service_request_id=12;DROP",
])
def test_bad_parameters_are_400_error_arrays(seeded, query: str) -> None:  # type: ignore[no-untyped-def]
    client, _ = seeded
    [error] = get_json(client, f"/open311/v2/requests.json?{query}", status=400)
    assert error["code"] == 400 and error["description"]
    assert get_json(client, "/open311/v2/services.json?jurisdiction_id=elsewhere.go.id", status=404)[0]["code"] == 404
    assert client.get("/open311/v2/requests.yaml").status_code == 404


def test_default_is_the_last_90_days_and_at_most_1000(seeded) -> None:  # type: ignore[no-untyped-def]
    client, runtime = seeded
    now = utcnow()
    with runtime.db.scope() as s:
        for n in range(1005):
            s.add(Ticket(number=f"NTB-2025-{n:06d}", status="forwarded", channel="open311", text=f"Lampu mati {n}",
                         agency_code="DISHUB", origin_id=f"bulk-{n}", opened_at=now - timedelta(hours=n + 1)))
        s.add(Ticket(number="NTB-2025-999999", status="forwarded", channel="open311", text="lama",
                     agency_code="DISHUB", origin_id="old", opened_at=now - timedelta(days=91)))
    clear_read_cache()
    listed = get_json(client, "/open311/v2/requests.json?service_code=DISHUB")
    assert len(listed) == 1000
    assert listed[0]["service_request_id"] == "NTB-2025-000000"  # newest first
    assert "NTB-2025-999999" not in {r["service_request_id"] for r in listed}


def test_a_shared_location_is_published_rounded_to_about_100_m(seeded) -> None:  # type: ignore[no-untyped-def]
    client, runtime = seeded
    with runtime.db.scope() as s:
        s.add(Ticket(number="NTB-2026-000500", status="forwarded", channel="messenger", text="Banjir di Kekalik",
                     agency_code="DINKES", origin_id="m-500", opened_at=utcnow() - timedelta(hours=2),
                     attachments=[{"type": "location", "url": None, "lat": -8.5833129, "long": 116.1167141,
                                   "map_url": "https://www.openstreetmap.org/?mlat=-8.583313&mlon=116.116714"}]))
    [one] = get_json(client, "/open311/v2/requests/NTB-2026-000500.json")
    assert (one["lat"], one["long"]) == (-8.583, 116.117)
    assert "8.5833129" not in json.dumps(one) and "openstreetmap" not in json.dumps(one)
