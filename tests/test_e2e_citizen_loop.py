"""The citizen's side end to end on loopback (issue 10): a photo, then its description a minute later, make one
complaint ticket with the photo, routed and e-mailed to the agency; the agency answers; the bot asks once for
a rating; the citizen taps "Belum selesai"; the ticket reopens and the agency gets a new e-mail with a fresh
link. Every Graph call happens exactly once. Same harness as tests/test_e2e_answer_loop.py: the app on a real
server with the embedded queue and sweeper, tests/graph_standin.py as the Graph API, aiosmtpd for mail.

The minute between photo and words is real to the service: the test drives the pipeline's clock (the one the
photo's wait is set and checked with), so the wait would run out at 120 s and the words arrive at 60 s.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import select

from ntbcare.core.models import AuditEntry, Rating, Ticket, TicketHold, TicketStatus, utcnow
from routing.deadlines import deadline_for
from routing.route import tickets_to_route
from tests import test_e2e_answer_loop as answer_loop
from tests.conftest import PAGE_ID
from tests.servers import eventually
from tests.test_e2e_answer_loop import ANSWER, PLN_MAIL, PLN_TEXT, PSID, Loop

loop = answer_loop.loop  # the same fixture: app, embedded queue and sweeper, Graph stand-in, SMTP
PHOTO = "https://scontent.xx.fbcdn.net/v/t1.15752-9/trafo_meledak.jpg?_nc_cat=1"


def messenger(mid: str, at_ms: int, **message: object) -> dict:
    event = {"sender": {"id": PSID}, "recipient": {"id": PAGE_ID}, "timestamp": at_ms,
             "message": {"mid": mid, **message}}
    return {"object": "page", "entry": [{"id": PAGE_ID, "time": at_ms + 500, "messaging": [event]}]}


def agency_links(loop: Loop) -> list[str]:
    bodies = [message.get_body(("plain",)).get_content() for _, message in loop.emails()]
    return [re.search(rf"{re.escape(loop.app_url)}/a/[\w.-]+", body).group(0) for body in bodies]  # type: ignore[union-attr]


class Clock:
    """The pipeline's now, moved only by the test (the embedded workers and the sweeper read it)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    @property
    def ms(self) -> int:
        return int(self.now.timestamp() * 1000)


def routable(loop: Loop, ticket_id: int, at: datetime) -> bool:
    """Whether routing would take the ticket at ``at`` (its wait over), asked the way the pipeline asks."""
    return bool(tickets_to_route(loop.runtime.db, [ticket_id], now=at))


def kind_of(message: dict) -> str:
    """Which of the four messages the citizen is owed a Graph call is."""
    text = message["message"].get("text", "")
    if message["message"].get("quick_replies"):
        return "rating prompt"
    if "buka kembali" in text:
        return "reopen notice"
    return "answer" if ANSWER in text else "acknowledgement"


def test_photo_then_text_one_ticket_answered_rated_not_fixed_reopened_every_call_once(loop: Loop) -> None:
    clock = Clock(utcnow().replace(microsecond=0) - timedelta(seconds=120))  # every payload time in the past
    photo_at = clock.now
    loop.runtime.pipeline.clock = clock
    loop.webhook(messenger("m_photo_e2e", clock.ms, attachments=[{"type": "image", "payload": {"url": PHOTO}}]))
    eventually(lambda: len(loop.tickets()) == 1, what="the photo's ticket")
    [waiting] = loop.tickets()
    with loop.runtime.db.session() as session:
        assert session.get(TicketHold, waiting.id).until == photo_at + timedelta(seconds=120)
    assert not routable(loop, waiting.id, photo_at + timedelta(seconds=60))
    assert routable(loop, waiting.id, photo_at + timedelta(seconds=120))  # without its words it would go then

    clock.advance(60)  # a minute later: the sweeper's rounds still find it waiting, unclassified
    loop.rounds.wait_for_a_whole_round()
    [waiting] = loop.tickets()
    assert waiting.status == TicketStatus.NEW and loop.graph.calls == []
    loop.webhook(messenger("m_text_e2e", clock.ms, text=PLN_TEXT))  # the description, 60 s after the photo
    ticket = loop.forwarded_ticket(acknowledged=1)
    assert (ticket.channel, ticket.agency_code) == ("messenger", "PLN")
    assert ticket.text == PLN_TEXT and [a["url"] for a in ticket.attachments] == [PHOTO]
    assert ticket.routed_at == photo_at + timedelta(seconds=60)  # routed then, not when the wait ran out
    [ack] = loop.graph.messages
    assert ticket.number in ack["message"]["text"]

    assert loop.answer_from_email(ANSWER).status_code == 200
    prompt = eventually(lambda: len(loop.graph.messages) == 3 and loop.graph.messages[2], what="the rating prompt")
    assert ANSWER in loop.graph.messages[1]["message"]["text"]
    assert [q["title"] for q in prompt["message"]["quick_replies"]] == ["Puas", "Kurang puas", "Belum selesai"]
    belum = prompt["message"]["quick_replies"][2]["payload"]

    clock.advance(30)
    loop.webhook(messenger("m_rate_e2e", clock.ms, text="Belum selesai", quick_reply={"payload": belum}))
    eventually(lambda: len(loop.mail.received) == 2 and loop.ticket_status(ticket.id) == TicketStatus.FORWARDED,
               what="the reopened ticket e-mailed to the agency again")
    notice = eventually(lambda: len(loop.graph.messages) == 4 and loop.graph.messages[3], what="the reopen notice")
    assert ticket.number in notice["message"]["text"] and "buka kembali" in notice["message"]["text"]
    first_link, fresh_link = agency_links(loop)
    assert [to for to, _ in loop.mail.received] == [[PLN_MAIL], [PLN_MAIL]] and fresh_link != first_link

    loop.rounds.wait_for_a_whole_round()  # nothing is sent twice
    # Every call the stand-in received, whatever its method, path or outcome: four sends, each once.
    assert Counter((call.method, call.path, call.status) for call in loop.graph.calls) == {
        ("POST", f"/{loop.graph.version}/{PAGE_ID}/messages", 200): 4}
    assert [kind_of(message) for message in loop.graph.messages] == [
        "acknowledgement", "answer", "rating prompt", "reopen notice"]
    assert len({message["message_id"] for message in loop.graph.messages}) == 4
    assert len(loop.mail.received) == 2 and len(loop.tickets()) == 1
    with loop.runtime.db.session() as session:
        [rating] = session.scalars(select(Rating)).all()
        stored = session.get(Ticket, ticket.id)
        assert (rating.ticket_id, rating.agency_code, rating.value) == (ticket.id, "PLN", "belum_selesai")
        # the deadline counted again from the reopening: the pipeline's now, which this test drives (it runs
        # behind the wall clock that stamped the delivery, so it can fall before the first deadline's start)
        reopened_at = clock.now
        assert stored.deadline_at == deadline_for(stored.tier, reopened_at, loop.runtime.pipeline.deadline_policy)
        reopened = session.scalars(select(AuditEntry).where(AuditEntry.action == "reopened")).one()
        assert reopened.actor == "citizen" and reopened.from_status == TicketStatus.ANSWERED
        assert stored.link_version == ticket.link_version + 1
