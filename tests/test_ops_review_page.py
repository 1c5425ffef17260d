"""What the review queue shows of each ticket, as an operator reads it: photos and attachments as links, the
place, the deadline clock (time left, or how late), why it is here in Indonesian for every reason the code can
give, and suggested duplicates of the last 14 days even beside a busy place on the same page."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, update

from ntbcare.core.models import Ticket, TicketStatus, utcnow
from ntbcare.pipeline.console_tickets import REVIEW_REASONS, reason_label
from tests.ops_helpers import login, make_operator
from tests.ops_tickets_seed import make_ticket, seed_agencies_with_contacts

ROOT = Path(__file__).resolve().parent.parent
PLACE = {"desa": {"name": "Pagesangan"}, "kecamatan": {"name": "Mataram"}, "kabkota": {"name": "Kota Mataram"}}


@pytest.fixture
def seeded(db: Any) -> Any:
    seed_agencies_with_contacts(db)
    make_operator(db, "ani", "kata-sandi-ani-1", name="Ani")
    return db


def item_of(page: str, number: str) -> str:
    """The review queue's entry for one ticket."""
    start = page.index(f'id="t-{number}"')
    end = page.find('<li class="card review-item"', start + 1)
    return page[start:end if end > 0 else len(page)]


def test_each_ticket_shows_its_photos_place_and_deadline_clock(client, seeded) -> None:  # type: ignore[no-untyped-def]
    on_time = make_ticket(seeded, 1, hours_ago=5, text="Tiang listrik roboh")
    late = make_ticket(seeded, 2, hours_ago=80, text="Jalan amblas")
    with seeded.scope() as session:
        session.execute(update(Ticket).where(Ticket.number == on_time).values(
            attachments=[{"type": "image", "url": "https://cdn.test/tiang.jpg"},
                         {"type": "file", "url": "https://cdn.test/surat.pdf"},
                         {"type": "location", "lat": -8.58, "long": 116.1}],
            classification={"candidates": [{"agency": "PLN", "score": 0.5}], "location_detail": PLACE}))
    assert login(client, "ani", "kata-sandi-ani-1").status_code == 303
    page = client.get("/ops/review").get_data(as_text=True)

    first = item_of(page, on_time)
    assert '<a href="https://cdn.test/tiang.jpg" rel="noopener noreferrer nofollow" target="_blank">Foto 1</a>' in first
    assert '<a href="https://cdn.test/surat.pdf"' in first and "Lampiran (file) 2" in first
    assert "Lokasi: Pagesangan, Mataram, Kota Mataram" in first
    assert "Lokasi yang dibagikan warga" in first and "openstreetmap.org/?mlat=-8.580000&amp;mlon=116.100000" in first
    assert re.search(r"batas \w+, \d+ \w+ \d{4} pukul [\d.]+ WITA\s*\(sisa 1 hari \d+ jam", first), first
    second = item_of(page, late)
    assert "Lokasi: tidak diketahui" in second and "Foto" not in second
    assert re.search(r'<span class="late">\(terlambat 1 hari [78] jam', second), second


@pytest.mark.parametrize(("reason", "shown"), [
    ("close_candidates", "Beberapa instansi sama mungkinnya"),
    ("jurisdiction_unknown", "Kewenangan (provinsi/kabupaten) tidak jelas"),
    ("not_ours", "Instansi menyatakan &#34;bukan kewenangan&#34;"),
    ("maybe_not_fixed", "Warga mungkin menyatakan masalahnya belum selesai"),
    ("forward_bounced", "E-mail ke instansi terpental"),
])
def test_why_a_ticket_is_in_review_is_said_in_indonesian(client, seeded, reason, shown) -> None:  # type: ignore[no-untyped-def]
    number = make_ticket(seeded, 1, reason=reason)
    assert login(client, "ani", "kata-sandi-ani-1").status_code == 303
    item = item_of(client.get("/ops/review").get_data(as_text=True), number)
    assert f"<strong>Alasan ditinjau:</strong> {shown}" in item
    assert reason not in item.split("Alasan ditinjau:")[1].split("</p>")[0]  # not the code itself


def test_every_review_reason_the_code_writes_has_indonesian_words() -> None:
    """Each reason written anywhere (put_in_review(..., "x"), review_reason = "x", the classifier's
    abstain reasons) has a label; an unknown one would show its English code to the operator."""
    written: set[str] = set()
    patterns = (r'put_in_review\([^)]*?,\s*"([a-z_]+)"', r'review_reason\s*=\s*"([a-z_]+)"',
                r'reason\s*=\s*"([a-z_]+)"', r'review_reason="([a-z_]+)"')
    for package in ("ingest", "routing", "bot", "ntbcare"):
        for path in (ROOT / package).rglob("*.py"):
            source = path.read_text(encoding="utf-8")
            for pattern in patterns:
                written.update(re.findall(pattern, source))
    assert {"low_confidence", "close_candidates", "jurisdiction_unknown", "not_ours", "forward_failed",
            "forward_bounced", "maybe_not_fixed", "no_text", "split", "reopened"} <= written
    assert written <= set(REVIEW_REASONS), written - set(REVIEW_REASONS)
    assert all(reason_label(code) != code for code in written)


def test_an_older_match_within_14_days_shows_beside_a_busy_place(client, seeded) -> None:  # type: ignore[no-untyped-def]
    """2,001 newer tickets at another place on the same review page used to fill a cut-off of 2,000 rows shared
    by every place, so a match 13 days old was never compared."""
    quiet = make_ticket(seeded, 1, location="5271", hours_ago=1,
                        text="Lampu jalan mati di depan Pasar Kebon Roek sejak minggu lalu")
    match = make_ticket(seeded, 2, location="5271", status=TicketStatus.FORWARDED, agency="PLN", hours_ago=13 * 24,
                        text="Lampu jalan di depan Pasar Kebon Roek mati sejak minggu lalu")
    busy = make_ticket(seeded, 3, location="5201", hours_ago=2, text="Saluran irigasi jebol di Gerung")
    now = utcnow()
    rows = [{"number": f"NTB-2026-{n:06d}", "status": TicketStatus.FORWARDED, "channel": "comment",
             "text": f"Keluhan warga nomor {n} tentang hal lain di Lombok Barat", "attachments": [],
             "agency_code": "PLN", "origin_id": f"busy-{n}", "tier": "normal", "urgent": False, "link_version": 1,
             "location_code": "5201", "opened_at": now - timedelta(minutes=n), "created_at": now, "updated_at": now}
            for n in range(100, 2101)]
    with seeded.scope() as session:
        session.execute(insert(Ticket), rows)
    assert login(client, "ani", "kata-sandi-ani-1").status_code == 303
    page = client.get("/ops/review").get_data(as_text=True)
    assert f"Gabung ke {match}" in item_of(page, quiet)
    assert "Gabung ke" not in item_of(page, busy)


def test_suggestions_follow_new_changed_and_merged_tickets_at_once(client, seeded) -> None:  # type: ignore[no-untyped-def]
    """A place's tickets are kept between page loads, and read again as soon as anything there changes."""
    text = "Sampah menumpuk di depan Pasar Cakranegara sudah tiga hari"
    waiting = make_ticket(seeded, 1, location="5271", hours_ago=1, text=text)
    make_ticket(seeded, 2, location="5271", status=TicketStatus.FORWARDED, agency="PUPRPKP", hours_ago=3,
                text="Jalan berlubang di Jl. Pejanggik")
    assert login(client, "ani", "kata-sandi-ani-1").status_code == 303
    assert "Gabung ke" not in item_of(client.get("/ops/review").get_data(as_text=True), waiting)

    newcomer = make_ticket(seeded, 3, location="5271", status=TicketStatus.FORWARDED, agency="PUPRPKP",
                           hours_ago=2, text=text + "!")
    assert f"Gabung ke {newcomer}" in item_of(client.get("/ops/review").get_data(as_text=True), waiting)

    with seeded.scope() as session:  # its citizen edited the comment into something else
        session.execute(update(Ticket).where(Ticket.number == newcomer).values(text="Listrik padam di Ampenan"))
    assert "Gabung ke" not in item_of(client.get("/ops/review").get_data(as_text=True), waiting)

    with seeded.scope() as session:
        session.execute(update(Ticket).where(Ticket.number == "NTB-2026-000002").values(text=text))
    assert "Gabung ke NTB-2026-000002" in item_of(client.get("/ops/review").get_data(as_text=True), waiting)
    with seeded.scope() as session:  # merged elsewhere meanwhile: no longer a ticket to merge into
        session.execute(update(Ticket).where(Ticket.number == "NTB-2026-000002").values(status=TicketStatus.MERGED))
    assert "Gabung ke" not in item_of(client.get("/ops/review").get_data(as_text=True), waiting)
