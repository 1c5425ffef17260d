"""Ticket search at /ops/tickets?q=: the number, words of the text (Indonesian words with their affixes) and the
citizen's name, any case, on SQLite (FTS5 trigram index kept by triggers) and PostgreSQL (pg_trgm GIN); the index
follows every write (new tickets, edited text, renamed or forgotten citizens, tickets made before the index
existed), and answering through the index or by reading newest first gives the same tickets."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select, text, update

from ntbcare.core import ticket_search
from ntbcare.core.db import Database
from ntbcare.core.migrate import upgrade
from ntbcare.core.models import Citizen, Ticket
from tests.ops_helpers import login, make_operator
from tests.ops_tickets_seed import make_ticket, seed_agencies_with_contacts


@pytest.fixture
def seeded(db: Any) -> Any:
    seed_agencies_with_contacts(db)
    make_operator(db, "ani", "kata-sandi-ani-1", name="Ani")
    return db


def found(client: Any, query: str) -> list[str]:
    response = client.get("/ops/tickets", query_string={"q": query})
    assert response.status_code == 200, query
    return re.findall(r'<td data-label="Nomor"><a [^>]*>(NTB-\d{4}-\d{6})</a>', response.get_data(as_text=True))


def test_search_finds_number_words_and_names_in_any_case(client, seeded) -> None:  # type: ignore[no-untyped-def]
    make_ticket(seeded, 1, text="Perjalanan ke sekolah terganggu, jalannya berlubang", name="Lalu Muhammad Zohri",
                hours_ago=3)
    make_ticket(seeded, 2, text="Air PDAM tidak mengalir di Cakranegara", name="Baiq Nurul Aini", hours_ago=2)
    make_ticket(seeded, 3, text='Lampu "PJU" mati, 50% jalan gelap_total', name="Ni Luh Putu", hours_ago=1)
    assert login(client, "ani", "kata-sandi-ani-1").status_code == 303

    assert found(client, "jalan") == ["NTB-2026-000003", "NTB-2026-000001"]  # "perjalanan", "jalannya", "jalan"
    assert found(client, "BERLUBANG") == ["NTB-2026-000001"]
    assert found(client, "cakranegara") == ["NTB-2026-000002"]
    assert found(client, "nurul") == ["NTB-2026-000002"]  # the citizen's name
    assert found(client, "ZOHRI") == ["NTB-2026-000001"]
    assert found(client, "2026-000002") == ["NTB-2026-000002"]  # part of a number
    assert found(client, "NTB-2026-000003") == ["NTB-2026-000003"]  # the whole number
    assert found(client, "air pdam tidak") == ["NTB-2026-000002"]  # words in a row
    assert found(client, "pdam air") == []  # ... in that order
    assert found(client, "50%") == ["NTB-2026-000003"] and found(client, "0%") == ["NTB-2026-000003"]
    assert found(client, "gelap_") == ["NTB-2026-000003"] and found(client, "p_j") == []  # _ is a character
    assert found(client, '"PJU"') == ["NTB-2026-000003"]  # quotes are characters, not FTS5 syntax
    for odd in ("PJU OR air", "jalan*", "NEAR(jalan sekolah)", "text:jalan", "(", '"', "\x00", "lu"):
        found(client, odd)  # never an error page
    assert found(client, "lu") == ["NTB-2026-000003", "NTB-2026-000001"]  # "Luh", "Lalu", "berlubang": under three
    # characters there is no trigram to look up, so tickets are read newest first: the same meaning


def test_the_index_follows_edits_renames_and_forgotten_names(client, seeded) -> None:  # type: ignore[no-untyped-def]
    number = make_ticket(seeded, 1, text="Jembatan gantung putus", name="Siti Aminah")
    assert login(client, "ani", "kata-sandi-ani-1").status_code == 303
    assert found(client, "jembatan") == [number] and found(client, "aminah") == [number]

    with seeded.scope() as session:  # the citizen edited the comment (ingest updates the text)
        ticket = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        ticket.text = "Jalan longsor di Sembalun"
    assert found(client, "jembatan") == [] and found(client, "longsor") == [number]

    with seeded.scope() as session:  # a Facebook name changed
        session.execute(update(Citizen).values(display_name="Siti Rahmawati"))
    assert found(client, "aminah") == [] and found(client, "rahmawati") == [number]

    with seeded.scope() as session:  # `ntbcare citizens forget` erases the name
        session.execute(update(Citizen).values(display_name=None))
    assert found(client, "rahmawati") == [] and found(client, "longsor") == [number]
    if seeded.is_sqlite:
        with seeded.session() as session:
            rows = session.execute(text("SELECT rowid, number, text, name FROM ticket_search")).all()
        assert [tuple(row) for row in rows] == [(ticket.id, number, "Jalan longsor di Sembalun", None)]


@pytest.mark.parametrize("few", [1000, 2])
def test_through_the_index_or_newest_first_the_same_tickets(client, seeded, monkeypatch, few) -> None:  # type: ignore[no-untyped-def]
    """With few=2 every term here is "dense" and answered by reading newest first; with 1000 through the index."""
    monkeypatch.setattr(ticket_search, "FEW", few)
    texts = ["Sampah menumpuk di pasar", "Pasar becek dan sampah", "Jalan rusak", "Sampah lagi di Pasar Kebon Roek",
             "Listrik padam", "Pasar Mandalika banjir"]
    for n, words in enumerate(texts, start=1):
        make_ticket(seeded, n, text=words, name=f"Warga Pasar {n}" if n % 2 else "Made", hours_ago=10 - n)
    assert login(client, "ani", "kata-sandi-ani-1").status_code == 303
    for term in ("sampah", "PASAR", "pasar kebon", "made", "listrik", "tidak ada"):
        with seeded.session() as session:  # closed before the request: a SQLite transaction holds the lock
            expected = list(session.scalars(select(Ticket.number).where(
                ticket_search.matches(term, sqlite=seeded.is_sqlite))
                .order_by(Ticket.opened_at.desc(), Ticket.id.desc())))
            condition = str(ticket_search.text_condition(session, term))
        assert found(client, term) == expected, term
        through_index = "ticket_search" in condition or "UNION ALL" in condition
        assert through_index == (len(expected) <= few), (term, condition)
    assert found(client, "pasar")[:2] == ["NTB-2026-000006", "NTB-2026-000005"]  # newest first, names included


def test_tickets_made_before_the_index_are_found(database_url: str) -> None:
    """Revision 0012 indexes the tickets already there (a database upgraded in place)."""
    db = Database(database_url)
    try:
        upgrade(db.engine, "0009")
        with db.scope() as session:
            citizen = Citizen(fb_user_id="u-1", display_name="Dewi Lestari")
            session.add(citizen)
            session.flush()
            session.execute(text("INSERT INTO tickets (number, status, channel, text, attachments, origin_id, "
                                 "citizen_id, urgent, tier, link_version, opened_at, created_at, updated_at) "
                                 "VALUES ('NTB-2026-000001', 'review', 'comment', 'Sekolah roboh di Praya', '[]', "
                                 "'o-1', :citizen, false, 'normal', 1, :now, :now, :now)"),
                            {"citizen": citizen.id, "now": citizen.created_at})
        upgrade(db.engine)
        with db.session() as session:
            for term in ("roboh", "lestari", "2026-0000"):
                assert list(session.scalars(select(Ticket.number).where(
                    ticket_search.text_condition(session, term)))) == ["NTB-2026-000001"], term
    finally:
        db.dispose()
