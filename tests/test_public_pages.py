"""The public page, an agency's page and the CSV as a visitor gets them; and the personal-data corpus of
tests/public_seed.py in no public byte: HTML, CSV, Open311 JSON and XML (the recap has its own test)."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from ntbcare.pipeline.accountability.cache import clear_cache
from ntbcare.web.open311 import clear_read_cache
from tests.public_seed import CORPUS, NOW, seed_month

DECEMBER = "bulan=2026-12"
SPAN = "start_date=2026-11-15T00:00:00%2B08:00&end_date=2027-01-01T00:00:00%2B08:00"


@pytest.fixture
def seeded(client, runtime, monkeypatch):  # type: ignore[no-untyped-def]
    # The figures are as of the fixture's moment (30 Dec 12:00 WITA): which tickets are past their deadline
    # depends on it, and the wall clock may still be inside December.
    monkeypatch.setattr("ntbcare.web.transparency.utcnow", lambda: NOW)
    ids = seed_month(runtime.db, runtime.settings)
    clear_cache()
    clear_read_cache()
    yield client, ids
    clear_cache()
    clear_read_cache()


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_public_page_shows_province_totals_then_every_agency(seeded) -> None:  # type: ignore[no-untyped-def]
    client, _ = seeded
    response = client.get(f"/transparansi?{DECEMBER}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    text = text_of(html)
    assert "Desember 2026" in text
    assert text.index("Provinsi NTB") < text.index("Per instansi")
    assert "Diterima 9" in text and "Dijawab 5" in text and "Tepat waktu 33.3%" in text
    assert "3 laporan pada periode ini tidak ditampilkan" in text
    rows = re.findall(r'<tr>\s*<th scope="row"><a href="/transparansi/(\w+)\?bulan=2026-12">', html)
    assert rows == ["DINKES", "PUPR", "DISHUB"]  # most received first
    assert "<script" not in html and "http" not in html.split("</head>")[0].replace("http-equiv", "")
    assert '<svg' in html and 'role="img"' in html and "Tabel angka grafik" in html
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_sorting_is_a_link_and_reverses(seeded) -> None:  # type: ignore[no-untyped-def]
    client, _ = seeded
    html = client.get(f"/transparansi?{DECEMBER}&urut=tepat_waktu&arah=naik").get_data(as_text=True)
    order = re.findall(r'<th scope="row"><a href="/transparansi/(\w+)', html)
    assert order == ["PUPR", "DINKES", "DISHUB"]  # 0 %, 50 %, none last
    assert 'aria-sort="ascending"' in html
    assert "urut=tepat_waktu&amp;arah=turun" in html


def test_bad_period_is_a_400_page_and_csv_line(seeded) -> None:  # type: ignore[no-untyped-def]
    client, _ = seeded
    page = client.get("/transparansi?bulan=2026-13")
    assert page.status_code == 400 and "Periode tidak dikenali" in page.get_data(as_text=True)
    data = client.get("/transparansi.csv?kuartal=Q9")
    assert data.status_code == 400 and data.mimetype == "text/plain"


def test_csv_download_is_utf8_with_a_header_row(seeded) -> None:  # type: ignore[no-untyped-def]
    client, _ = seeded
    response = client.get(f"/transparansi.csv?{DECEMBER}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="transparansi-2026-12-01-2026-12-31.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8"))))
    assert [r["kode"] for r in rows] == ["NTB", "DINKES", "PUPR", "DISHUB"]
    assert rows[1]["diterima"] == "6" and rows[1]["median_jam"] == "4.0" and rows[1]["persen_puas"] == "66.7"


def test_agency_page_lists_its_public_tickets_scrubbed(seeded) -> None:  # type: ignore[no-untyped-def]
    client, ids = seeded
    response = client.get(f"/transparansi/dinkes?{DECEMBER}")
    assert response.status_code == 200
    text = text_of(response.get_data(as_text=True))
    assert "Dinas Kesehatan" in text and "Diterima 6" in text
    assert "NTB-2026-000001" in text and "Jalan di Desa Sesela berlubang besar" in text
    assert "[disamarkan]" in text and "[nama disamarkan]" in text and "[tautan disamarkan]" in text
    assert "Posyandu Sesela buka lagi mulai Senin." in text  # T6's answer
    pupr = text_of(client.get(f"/transparansi/PUPR?{DECEMBER}").get_data(as_text=True))
    assert "Belum ada laporan yang dapat ditampilkan" in pupr  # T8 withdrawn, T10 hidden
    assert client.get("/transparansi/NOPE").status_code == 404


def public_bytes(client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    paths = [f"/transparansi?{DECEMBER}", f"/transparansi/DINKES?{DECEMBER}", f"/transparansi/PUPR?{DECEMBER}",
             f"/transparansi.csv?{DECEMBER}"]
    for fmt in ("json", "xml"):
        paths += [f"/open311/v2/requests.{fmt}?{SPAN}", f"/open311/v2/services.{fmt}",
                  f"/open311/v2/discovery.{fmt}"]
        paths += [f"/open311/v2/requests/NTB-2026-{n:06d}.{fmt}" for n in range(1, 11)]
    bodies = {}
    for path in paths:
        response = client.get(path)
        assert response.status_code in (200, 404), path
        bodies[path] = response.get_data(as_text=True)
    return bodies


def test_no_personal_data_in_any_public_byte(seeded) -> None:  # type: ignore[no-untyped-def]
    client, _ = seeded
    bodies = public_bytes(client)
    listed = json.loads(bodies[f"/open311/v2/requests.json?{SPAN}"])
    assert len(listed) == 7  # T1-T7; T8 withdrawn, T9 not a complaint, T10 hidden
    for path, body in bodies.items():
        lowered = body.lower()
        for secret in CORPUS:
            assert secret.lower() not in lowered, f"{secret!r} published at {path}"


def test_agency_page_shows_every_public_answer_of_a_ticket_scrubbed(seeded, runtime) -> None:  # type: ignore[no-untyped-def]
    from ntbcare.core.models import AgencyAnswer
    from tests.public_seed import EMAIL, NAME, PHONE, at

    client, ids = seeded
    with runtime.db.scope() as s:  # T1 answered again a week later, once more with the citizen's details
        s.add(AgencyAnswer(ticket_id=ids["T1"], agency_code="DINKES", action="answer", link_version=1,
                           text=f"Tambalan selesai, Ibu {NAME}. Keluhan lain ke {PHONE} atau {EMAIL}.",
                           created_at=at(14, 10)))
        s.add(AgencyAnswer(ticket_id=ids["T1"], agency_code="DINKES", action="not_ours", link_version=1,
                           text="catatan internal bukan jawaban", created_at=at(14, 11)))
    clear_read_cache()
    html = client.get(f"/transparansi/DINKES?{DECEMBER}").get_data(as_text=True)
    text = text_of(html)
    first = text.index("Sudah kami cek, Ibu [nama disamarkan].")  # the first answer stays
    second = text.index("Tambalan selesai, Ibu [nama disamarkan]. Keluhan lain ke [disamarkan]")
    assert first < second and "14/12/2026 10.00 WITA" in text
    assert "catatan internal" not in text
    for secret in CORPUS:
        assert secret.lower() not in html.lower(), secret
    [one] = json.loads(client.get("/open311/v2/requests/NTB-2026-000001.json").data)
    assert one["status_notes"].startswith("Tambalan selesai")  # Open311 carries the latest
