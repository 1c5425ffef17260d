"""A public comment is checked for personal data again when it is edited or when a reply joins its ticket, not
only when the ticket opens: one that now shows a NIK, a phone number or an e-mail address is hidden."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from ntbcare.core.models import Reply, Ticket
from ntbcare.pipeline.runtime import Runtime
from tests.conftest import Poster, RecordingDispatcher, drain, fixture_bytes, make_settings

ORIGIN = "555000000000111_888000000000001"
REPLY = "555000000000111_888000000000002"
NIK = "5201011234567890"


def with_message(fixture: str, message: str) -> dict:
    body = json.loads(fixture_bytes(fixture))
    body["entry"][0]["changes"][0]["value"]["message"] = message
    return body


@pytest.fixture
def make_runtime(database_url, db):  # type: ignore[no-untyped-def]
    def build(**overrides: str) -> Runtime:
        # No Graph API answers (a refused port): what is owed is under test, and it stays owed.
        settings = make_settings(DATABASE_URL=database_url, FB_PAGE_ACCESS_TOKEN="page-token",
                                 GRAPH_API_BASE_URL="http://127.0.0.1:9", ACK_COMMENT="false", **overrides)
        return Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher())

    return build


def deliver(runtime: Runtime, *bodies: dict | str) -> None:
    from ntbcare.app import create_app

    post = Poster(create_app(runtime=runtime).test_client())
    for body in bodies:
        assert post(body).status_code == 200
        drain(runtime, route=True)


def hides(runtime: Runtime) -> list[tuple[str, str]]:
    with runtime.db.session() as session:
        ticket_id = session.scalars(select(Ticket.id)).one()
        rows = session.scalars(select(Reply).where(Reply.channel == "hide").order_by(Reply.id)).all()
        return [(row.key.replace(f"hide:{ticket_id}", "hide:T", 1), row.target_id) for row in rows]


def test_an_edit_that_adds_a_nik_hides_the_comment(make_runtime):
    runtime = make_runtime()
    deliver(runtime, "feed__comment__add")
    assert hides(runtime) == []
    deliver(runtime, with_message("feed__comment__edited", f"Jalan rusak, hubungi saya NIK {NIK}"))
    assert hides(runtime) == [("hide:T", ORIGIN)]
    deliver(runtime, with_message("feed__comment__edited", f"Jalan rusak sekali, NIK {NIK}"))  # edited again
    assert hides(runtime) == [("hide:T", ORIGIN)]  # hidden once


def test_a_reply_showing_a_phone_number_is_hidden_itself(make_runtime):
    runtime = make_runtime()
    deliver(runtime, "feed__comment__add",
            with_message("feed__comment__reply", "Sudah 3 bulan, telepon saja 0812 3456 7890"))
    assert hides(runtime) == [("hide:T:" + REPLY, REPLY)]


def test_changes_without_personal_data_or_with_hiding_off_hide_nothing(make_runtime):
    runtime = make_runtime()
    deliver(runtime, "feed__comment__add", with_message("feed__comment__edited", "Jalan rusak parah sekali"),
            "feed__comment__reply")
    assert hides(runtime) == []
    quiet = make_runtime(HIDE_PII_COMMENTS="false")
    deliver(quiet, with_message("feed__comment__edited", f"NIK saya {NIK}"))
    assert hides(quiet) == []
