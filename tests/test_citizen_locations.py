"""A location a citizen shares in Messenger reaches the people who act on it: the console's ticket page, the
agency's ticket page and the forward e-mail show its coordinates with a map link (OpenStreetMap, built from the
coordinates alone), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time

from sqlalchemy import select

from ntbcare.app import create_app
from ntbcare.core.agency_mail import build_forward_email
from ntbcare.core.db import Database
from ntbcare.core.display import shared_locations
from ntbcare.core.links import make_agency_token
from ntbcare.core.models import Agency, OutboundMail, Ticket, utcnow
from ntbcare.pipeline import ticket_ops
from ntbcare.pipeline.runtime import Runtime
from ntbcare.pipeline.ticket_timeline import photos
from routing.forwarding import forward_content
from tests.conftest import BASE_ENV, PAGE_ID, RecordingDispatcher, make_settings
from tests.ops_helpers import login, make_operator
from tests.ops_tickets_seed import seed_agencies_with_contacts
from tests.test_media_download import receive

MAP = "https://www.openstreetmap.org/?mlat=-8.583069&amp;mlon=116.116608#map=17/-8.583069/116.116608"


def location_message() -> bytes:
    at = int(time.time() * 1000)
    message = {"mid": "m_loc", "text": "Trafo meledak di sini, listrik padam satu kampung, tolong PLN",
               "attachments": [{"type": "location", "payload": {"coordinates": {"lat": -8.583069,
                                                                                  "long": 116.116608}}}]}
    event = {"sender": {"id": "6543210987654321"}, "recipient": {"id": PAGE_ID}, "timestamp": at, "message": message}
    return json.dumps({"object": "page", "entry": [{"id": PAGE_ID, "time": at, "messaging": [event]}]}).encode()


def test_a_shared_location_shows_on_the_console_the_agency_page_and_the_forward_mail(database_url, db: Database):
    seed_agencies_with_contacts(db)
    rt = Runtime(settings=make_settings(DATABASE_URL=database_url), db=db, dispatcher=RecordingDispatcher())
    ticket = receive(rt, location_message())
    if ticket.agency_code != "PLN":
        ticket_ops.assign(rt.pipeline, ticket.number, "PLN", actor="operator:test")
    with db.session() as session:
        ticket = session.scalars(select(Ticket)).one()
        assert session.scalars(select(OutboundMail).where(OutboundMail.kind == "forward")).first() is not None
        content = forward_content(rt.settings, ticket, session.get_one(Agency, "PLN"), utcnow())
    mail = build_forward_email(content, mail_from="ntbcare@ntbprov.go.id", to=["pengaduan@pln.test"])
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Titik dari warga: -8.583069, 116.116608" in text and "openstreetmap.org/?mlat=-8.583069" in text
    assert MAP in html
    app = create_app(runtime=rt)
    operator = app.test_client()
    make_operator(db, "ani", "a-long-password-1")
    assert login(operator, "ani", "a-long-password-1").status_code == 303
    console = operator.get(f"/ops/tickets/{ticket.number}").get_data(as_text=True)
    assert "Lokasi yang dibagikan warga" in console and MAP in console and "-8.583069, 116.116608" in console
    agency = app.test_client().get(f"/a/{make_agency_token(BASE_ENV['SECRET_KEY'], ticket.id, 'PLN', 1)}")
    page = agency.get_data(as_text=True)
    assert agency.status_code == 200 and MAP in page and "-8.583069, 116.116608" in page


def test_only_well_formed_coordinates_make_a_map_link() -> None:
    assert shared_locations([{"type": "location", "lat": "x", "long": 1}, {"type": "location", "lat": 91, "long": 0},
                             {"type": "location", "lat": True, "long": 0}, {"type": "image", "url": "https://x"}]) == []
    [link] = [item for item in photos([{"type": "location", "lat": -8.5, "long": 116.1}]) if item["type"] == "location"]
    assert link["url"].startswith("https://www.openstreetmap.org/?mlat=-8.500000&mlon=116.100000")
