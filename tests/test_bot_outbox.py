"""Reply outbox: keys owed once, answers posted where the complaint came from, every Graph error class,
reconciliation by read-back before any second post, the dead-token pause and operator retry."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
import urllib3.exceptions
from sqlalchemy import func, select, update

from bot.graph import GraphClient
from bot.outbox import PAGE_TOKEN_FLAG, clear_page_token_flag, owe_answer, owe_reply, retry_replies
from bot.pacing import SenderPolicy
from bot.ratelimit import UsageGovernor
from bot.sender import send_due_replies
from ntbcare.core.models import (
    Agency,
    AgencyAnswer,
    AuditEntry,
    Channel,
    Delivery,
    Event,
    Reply,
    ReplyStatus,
    ServiceFlag,
    Ticket,
    TicketStatus,
    utcnow,
)
from tests.conftest import APP_SECRET, PAGE_ID

BASE = "https://graph.test"
VERSION = "v25.0"
TOKEN = "EAAPageTokenForTests"
FAST = SenderPolicy(reconcile_after=timedelta(0), backoff_base=1.0, backoff_cap=60.0)
AGENCY_NAME = "Dinas Pekerjaan Umum dan Penataan Ruang NTB"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeGraph:
    """A stand-in Graph API on top of ``responses``: stores what was posted, serves it back on read-back, and
    plays a script of faults (one per POST/GET, in order)."""

    post_faults: list[str] = field(default_factory=list)
    get_faults: list[str] = field(default_factory=list)
    comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    # (index in calls, target, comment text or message metadata, fault played) of every POST carrying a reply
    post_log: list[tuple[int, str, str, str]] = field(default_factory=list)
    counter: int = 0
    psid_of: dict[str, str] = field(default_factory=dict)  # str(recipient) of a private reply -> the PSID

    def install(self, rsps: responses.RequestsMock) -> None:
        pattern = re.compile(rf"{re.escape(BASE)}/{VERSION}/.*")
        rsps.add_callback(responses.POST, pattern, callback=self._post)
        rsps.add_callback(responses.GET, pattern, callback=self._get)

    def posts(self, path_end: str = "") -> list[str]:
        return [path for method, path in self.calls if method == "POST" and path.endswith(path_end)]

    def _fault(self, kind: str, store: Any) -> tuple[int, dict[str, str], str]:
        if kind in ("timeout-after", "500-after", "code2-after"):
            store()
        if kind in ("timeout-after", "timeout"):
            raise requests.ReadTimeout("read timed out")
        if kind == "refused":
            reason = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection")
            raise requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, BASE, reason))
        codes = {"500": (500, 1, None), "500-after": (500, 1, None), "code2-after": (400, 2, None),
                 "ratelimit": (400, 613, None), "token": (400, 190, 463), "permission": (400, 200, None),
                 "invalid": (400, 100, None), "window": (400, 10, 2018278), "duplicate": (400, 506, None),
                 "policy": (400, 368, None), "500-plain": (500, None, None)}
        status, code, subcode = codes[kind]
        if code is None:
            return status, {}, "<html>500</html>"
        error: dict[str, Any] = {"message": kind, "type": "OAuthException", "code": code}
        if subcode is not None:
            error["error_subcode"] = subcode
        return status, {}, json.dumps({"error": error})

    def _post(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        path = urlsplit(request.url).path.split(f"/{VERSION}/", 1)[1]
        self.calls.append(("POST", path))
        self.counter += 1
        body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
        if path.endswith("/comments"):
            target, message = path.rsplit("/", 1)[0], parse_qs(body)["message"][0]
            logged = (len(self.calls) - 1, target, message)
            new_id = f"{target}_r{self.counter}"

            def store() -> None:
                self.comments.setdefault(target, []).append(
                    {"id": new_id, "from": {"id": PAGE_ID}, "message": message,
                     "created_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")})
            result = {"id": new_id}
        elif path.endswith("/messages"):
            sent = json.loads(body)
            recipient = next(iter(sent["recipient"].values()))
            logged = (len(self.calls) - 1, recipient, sent["message"].get("metadata", ""))
            new_id = f"m_{self.counter}"

            # A private reply's answer names the commenter's PSID, a numeric id like every other.
            psid = recipient if str(recipient).isdigit() else "7199000000000001"

            def store() -> None:
                self.messages.append({**sent, "mid": new_id,
                                      "created_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")})
                self.psid_of[str(sent["recipient"])] = psid
            result = {"recipient_id": psid, "message_id": new_id}
        else:
            def store() -> None:
                self.hidden.append(path)
            result, logged = {"success": True}, None
        fault = self.post_faults.pop(0) if self.post_faults else "ok"
        if logged is not None:
            self.post_log.append((*logged, fault))
        if fault != "ok":
            return self._fault(fault, store)
        store()
        return 200, {}, json.dumps(result)

    def _get(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        path = urlsplit(request.url).path.split(f"/{VERSION}/", 1)[1]
        self.calls.append(("GET", path))
        if self.get_faults:
            fault = self.get_faults.pop(0)
            if fault != "ok":
                return self._fault(fault, lambda: None)
        target = path.rsplit("/", 1)[0]
        if path.endswith("/conversations"):  # the Page's thread with one PSID, newest messages first
            psid = parse_qs(urlsplit(request.url).query)["user_id"][0]
            sent = [{"id": m["mid"], "message": m["message"].get("text"), "from": {"id": PAGE_ID},
                     "created_time": m["created_time"]} for m in reversed(self.messages)
                    if m["recipient"].get("id") == psid or self.psid_of.get(str(m["recipient"])) == psid]
            return 200, {}, json.dumps({"data": [{"id": f"t_{psid}", "messages": {"data": sent}}] if sent else []})
        return 200, {}, json.dumps({"data": self.comments.get(target, [])})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def graph_client(clock: FakeClock) -> Iterator[GraphClient]:
    governor = UsageGovernor(clock=clock, sleep=lambda seconds: None)
    with GraphClient(BASE, VERSION, PAGE_ID, TOKEN, APP_SECRET, governor=governor) as client:
        yield client


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    graph = FakeGraph()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        graph.install(rsps)
        yield graph


def make_ticket(db, n: int = 1, *, channel: str = Channel.COMMENT, age: timedelta = timedelta(hours=1),  # type: ignore[no-untyped-def]
                text: str = "Jalan rusak parah di Desa Sembalun, mohon diperbaiki", status: str = "forwarded",
                psid: str | None = None, comment_id: str | None = None) -> int:
    """A ticket opened ``age`` ago (the citizen's last message too), routed to the PUPR agency."""
    opened = utcnow() - age
    with db.scope() as session:
        if session.get(Agency, "PUPR") is None:
            session.add(Agency(code="PUPR", name=AGENCY_NAME, kind="opd", emails=[]))
            session.flush()
        origin = f"555000000000111_{600000000000 + n}" if channel != Channel.MESSENGER else f"m_citizen_{n}"
        ticket = Ticket(number=f"NTB-2026-{n:06d}", channel=channel, text=text, origin_id=origin,
                        status=status, agency_code="PUPR", opened_at=opened, last_citizen_message_at=opened,
                        post_id="104000000000001_555000000000111" if channel != Channel.MESSENGER else None,
                        comment_id=origin if channel == Channel.COMMENT else comment_id,
                        psid=psid or (f"70000000000{n:04d}" if channel == Channel.MESSENGER else None))
        if channel == Channel.POST:
            ticket.post_id = origin
        session.add(ticket)
        session.flush()
        return ticket.id


def answer(db, ticket_id: int, text: str = "Perbaikan jalan dijadwalkan minggu depan.") -> list[int]:  # type: ignore[no-untyped-def]
    """What the agency page does: store the answer and owe its reply in one transaction."""
    with db.scope() as session:
        ticket = session.get(Ticket, ticket_id)
        row = AgencyAnswer(ticket_id=ticket.id, agency_code="PUPR", action="answer", text=text,
                           link_version=ticket.link_version)
        session.add(row)
        return [reply.id for reply in owe_answer(session, ticket, row)]


def reply_row(db, reply_id: int) -> Reply:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.get(Reply, reply_id)


def ticket_row(db, ticket_id: int) -> Ticket:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.get(Ticket, ticket_id)


def later(minutes: float) -> datetime:
    return utcnow() + timedelta(minutes=minutes)


def test_owing_the_same_answer_twice_writes_one_reply(db) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db)
    first = answer(db, ticket_id)
    with db.scope() as session:
        row = session.scalars(select(AgencyAnswer)).one()
        again = owe_answer(session, session.get(Ticket, ticket_id), row)
    assert [r.id for r in again] == first
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Reply)) == 1
        assert session.get(Reply, first[0]).key == f"answer:{row.id}"


def test_comment_answer_is_posted_under_the_comment_and_ticket_becomes_answered(db, settings, fake,
                                                                             graph_client) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db)
    [reply_id] = answer(db, ticket_id, "Sudah kami cek. Hubungi petugas di 081234567890 atau NIK 5271012345678901.")
    assert ticket_row(db, ticket_id).status == TicketStatus.FORWARDED  # owed is not answered
    report = send_due_replies(db, settings, graph_client, policy=FAST)
    assert report.sent == [reply_id]
    [posted] = fake.comments["555000000000111_600000000001"]
    assert AGENCY_NAME in posted["message"] and "NTB-2026-000001" in posted["message"]
    assert "Sudah kami cek" in posted["message"]
    assert "081234567890" not in posted["message"] and "5271012345678901" not in posted["message"]
    ticket = ticket_row(db, ticket_id)
    assert ticket.status == TicketStatus.ANSWERED and ticket.answered_at is not None
    assert reply_row(db, reply_id).graph_id == posted["id"]
    with db.session() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "answered")).one()
    assert entry.detail["graph_id"] == posted["id"]


def test_a_sent_reply_is_not_sent_again(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    answer(db, make_ticket(db))
    send_due_replies(db, settings, graph_client, policy=FAST)
    again = send_due_replies(db, settings, graph_client, policy=FAST, now=later(60))
    assert again.sent == [] and len(fake.posts("/comments")) == 1


@pytest.mark.parametrize("fault", ["timeout-after", "code2-after", "500-after"])
def test_ambiguous_post_that_did_happen_is_found_by_read_back_not_posted_again(db, settings, fake, graph_client,
                                                                              fault) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db)
    [reply_id] = answer(db, ticket_id)
    fake.post_faults = [fault]
    first = send_due_replies(db, settings, graph_client, policy=FAST)
    assert first.unknown == [reply_id] and reply_row(db, reply_id).status == ReplyStatus.UNKNOWN
    assert ticket_row(db, ticket_id).status == TicketStatus.FORWARDED
    second = send_due_replies(db, settings, graph_client, policy=FAST)
    assert second.reconciled == [reply_id]
    assert [m for m, _ in fake.calls] == ["POST", "GET"]
    assert len(fake.comments["555000000000111_600000000001"]) == 1
    assert reply_row(db, reply_id).graph_id == fake.comments["555000000000111_600000000001"][0]["id"]
    assert ticket_row(db, ticket_id).status == TicketStatus.ANSWERED


@pytest.mark.parametrize("fault", ["timeout", "500", "500-plain"])
def test_ambiguous_post_that_did_not_happen_is_read_back_then_sent_once(db, settings, fake, graph_client,
                                                                       fault) -> None:  # type: ignore[no-untyped-def]
    [reply_id] = answer(db, make_ticket(db))
    fake.post_faults = [fault]
    send_due_replies(db, settings, graph_client, policy=FAST)
    report = send_due_replies(db, settings, graph_client, policy=FAST)
    assert report.sent == [reply_id]
    assert [m for m, _ in fake.calls] == ["POST", "GET", "POST"]
    assert len(fake.comments["555000000000111_600000000001"]) == 1


def test_reconciliation_waits_before_reading_back(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    [reply_id] = answer(db, make_ticket(db))
    fake.post_faults = ["timeout"]
    policy = SenderPolicy(reconcile_after=timedelta(seconds=30))
    send_due_replies(db, settings, graph_client, policy=policy)
    send_due_replies(db, settings, graph_client, policy=policy)
    assert [m for m, _ in fake.calls] == ["POST"]
    send_due_replies(db, settings, graph_client, policy=policy, now=later(1))
    assert reply_row(db, reply_id).status == ReplyStatus.SENT


def test_failed_read_back_keeps_the_reply_unknown_and_posts_nothing(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    [reply_id] = answer(db, make_ticket(db))
    fake.post_faults = ["timeout"]
    fake.get_faults = ["500"]
    send_due_replies(db, settings, graph_client, policy=FAST)
    report = send_due_replies(db, settings, graph_client, policy=FAST)
    assert report.unknown == [reply_id] and reply_row(db, reply_id).status == ReplyStatus.UNKNOWN
    assert [m for m, _ in fake.calls] == ["POST", "GET"]
    send_due_replies(db, settings, graph_client, policy=FAST, now=later(15))
    assert [m for m, _ in fake.calls] == ["POST", "GET", "GET", "POST"]
    assert reply_row(db, reply_id).status == ReplyStatus.SENT


def test_a_crash_during_the_call_is_reconciled_after_the_lease(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db)
    [reply_id] = answer(db, ticket_id)
    # The process died after Facebook accepted the post but before the outcome was stored.
    fake.comments["555000000000111_600000000001"] = [{"id": "c_1", "from": {"id": PAGE_ID}, "created_time": "",
                                                      "message": reply_row(db, reply_id).text}]
    with db.scope() as session:
        session.execute(update(Reply).values(status=ReplyStatus.SENDING, attempts=1,
                                             claimed_at=utcnow() - timedelta(minutes=1)))
    assert send_due_replies(db, settings, graph_client, policy=FAST).sent == []  # lease still running
    assert fake.calls == []
    report = send_due_replies(db, settings, graph_client, policy=FAST, now=later(10))
    assert report.reconciled == [reply_id] and fake.posts() == []
    assert reply_row(db, reply_id).graph_id == "c_1"


def store_echo(db, metadata: str, mid: str) -> None:  # type: ignore[no-untyped-def]
    with db.scope() as session:
        delivery = Delivery(body=b"{}", body_sha256="0" * 64)
        session.add(delivery)
        session.flush()
        payload = {"sender": {"id": PAGE_ID}, "recipient": {"id": "psid"},
                   "message": {"mid": mid, "is_echo": True, "text": "x", "metadata": metadata}}
        session.add(Event(delivery_id=delivery.id, dedup_key=f"messenger:echo:{mid}", source="messenger",
                          kind="echo", external_id=mid, outcome="recorded", payload=payload))


def test_messenger_send_with_unknown_outcome_is_settled_by_its_echo(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db, channel=Channel.MESSENGER)
    [reply_id] = answer(db, ticket_id)
    fake.post_faults = ["timeout-after"]
    send_due_replies(db, settings, graph_client, policy=FAST)
    store_echo(db, f"ntbcare:{reply_row(db, reply_id).key}", "m_from_echo")
    report = send_due_replies(db, settings, graph_client, policy=FAST)
    answers = [m for m in fake.messages if m["message"].get("metadata") == f"ntbcare:{reply_row(db, reply_id).key}"]
    assert report.reconciled == [reply_id] and len(answers) == 1  # then the rating prompt (issue 10), once
    assert [m["message"]["metadata"] for m in fake.messages[1:]] == [f"ntbcare:rating:{ticket_id}:1"]
    assert reply_row(db, reply_id).graph_id == "m_from_echo"
    assert ticket_row(db, ticket_id).status == TicketStatus.ANSWERED


def test_messenger_send_without_echo_is_sent_again_once(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    [reply_id] = answer(db, make_ticket(db, channel=Channel.MESSENGER))
    fake.post_faults = ["timeout"]
    send_due_replies(db, settings, graph_client, policy=FAST)
    store_echo(db, "ntbcare:answer:999", "m_other")  # someone else's echo does not count
    assert send_due_replies(db, settings, graph_client, policy=FAST).sent == [reply_id]
    assert len(fake.messages) == 1 and fake.messages[0]["message"]["metadata"] == f"ntbcare:answer:{1}"


def test_messenger_send_whose_echo_never_came_is_found_in_the_conversation_not_sent_twice(db, settings, fake,
                                                                                         graph_client) -> None:  # type: ignore[no-untyped-def]
    """The answer was lost and so was the echo (the webhook was down, or it is late): the Page's conversation
    with the citizen is the authority before anything is sent again."""
    ticket_id = make_ticket(db, channel=Channel.MESSENGER)
    [reply_id] = answer(db, ticket_id)
    fake.post_faults = ["timeout-after"]  # Facebook delivered it; we never heard
    send_due_replies(db, settings, graph_client, policy=FAST)
    report = send_due_replies(db, settings, graph_client, policy=FAST)
    assert report.reconciled == [reply_id]
    assert ("GET", "104000000000001/conversations") in fake.calls
    key = reply_row(db, reply_id).key
    assert len([m for m in fake.messages if m["message"].get("metadata") == f"ntbcare:{key}"]) == 1
    assert reply_row(db, reply_id).graph_id == fake.messages[0]["mid"]
    assert ticket_row(db, ticket_id).status == TicketStatus.ANSWERED


def test_a_private_reply_whose_answer_was_lost_is_found_in_the_known_conversation(db, settings, fake,
                                                                                 graph_client) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db, psid="7199000000000001")  # a comment ticket whose citizen we know in Messenger
    with db.scope() as session:
        owe_reply(session, session.get(Ticket, ticket_id), key=f"ack-private:{ticket_id}", kind="ack",
                  channel="private_reply", target_id="555000000000111_600000000001", text="Laporan diterima.")
    fake.post_faults = ["timeout-after"]
    send_due_replies(db, settings, graph_client, policy=FAST)
    send_due_replies(db, settings, graph_client, policy=FAST)
    assert len(fake.messages) == 1
    with db.session() as session:
        assert session.scalars(select(Reply)).one().status == ReplyStatus.SENT


def test_rate_limit_stops_the_pass_and_no_call_goes_out_while_paused(db, settings, fake, graph_client, clock) -> None:  # type: ignore[no-untyped-def]
    ids = [answer(db, make_ticket(db, n))[0] for n in (1, 2, 3)]
    fake.post_faults = ["ratelimit"]
    report = send_due_replies(db, settings, graph_client, policy=FAST)
    assert report.retry == [ids[0]] and len(fake.calls) == 1
    rows = [reply_row(db, i) for i in ids]
    assert all(r.status == ReplyStatus.PENDING for r in rows) and [r.attempts for r in rows] == [0, 0, 0]
    assert rows[0].next_attempt_at > utcnow() + timedelta(seconds=200)
    send_due_replies(db, settings, graph_client, policy=FAST, now=later(1))
    assert len(fake.calls) == 1  # throttled: not a single call during the pause
    clock.now += 301
    report = send_due_replies(db, settings, graph_client, policy=FAST, now=later(6))
    assert sorted(report.sent) == ids and len(fake.posts()) == 4


@pytest.mark.parametrize("fault", ["refused", "policy"])
def test_definitely_not_sent_errors_are_retried_blindly_with_backoff(db, settings, fake, graph_client, fault) -> None:  # type: ignore[no-untyped-def]
    [reply_id] = answer(db, make_ticket(db))
    fake.post_faults = [fault]
    report = send_due_replies(db, settings, graph_client, policy=FAST)
    row = reply_row(db, reply_id)
    assert report.retry == [reply_id] and row.status == ReplyStatus.PENDING and row.attempts == 1
    assert row.next_attempt_at is not None and row.error
    send_due_replies(db, settings, graph_client, policy=FAST, now=later(120))
    assert [m for m, _ in fake.calls] == ["POST", "POST"] and reply_row(db, reply_id).status == ReplyStatus.SENT


def test_after_the_last_attempt_the_reply_fails_and_an_operator_can_retry_it(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db)
    [reply_id] = answer(db, ticket_id)
    policy = SenderPolicy(max_attempts=3, backoff_base=1.0, backoff_cap=5.0, reconcile_after=timedelta(0))
    fake.post_faults = ["refused"] * 3
    for step in range(4):
        send_due_replies(db, settings, graph_client, policy=policy, now=later(step))
    row = reply_row(db, reply_id)
    assert row.status == ReplyStatus.FAILED and row.attempts == 3 and "ConnectionFailed" in row.error
    assert len(fake.posts()) == 3 and ticket_row(db, ticket_id).status == TicketStatus.FORWARDED
    assert retry_replies(db) == [reply_id]
    send_due_replies(db, settings, graph_client, policy=policy)
    assert reply_row(db, reply_id).status == ReplyStatus.SENT
    assert ticket_row(db, ticket_id).status == TicketStatus.ANSWERED


@pytest.mark.parametrize("fault", ["permission", "invalid"])
def test_refused_requests_fail_at_once_with_the_error(db, settings, fake, graph_client, fault) -> None:  # type: ignore[no-untyped-def]
    [reply_id] = answer(db, make_ticket(db))
    fake.post_faults = [fault]
    report = send_due_replies(db, settings, graph_client, policy=FAST)
    row = reply_row(db, reply_id)
    assert report.failed == [reply_id] and row.status == ReplyStatus.FAILED and fault in row.error
    send_due_replies(db, settings, graph_client, policy=FAST, now=later(60))
    assert len(fake.calls) == 1


def test_dead_page_token_pauses_all_sending_until_the_flag_is_cleared(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    ids = [answer(db, make_ticket(db, n))[0] for n in (1, 2)]
    fake.post_faults = ["token"]
    send_due_replies(db, settings, graph_client, policy=FAST)
    with db.session() as session:
        assert session.get(ServiceFlag, PAGE_TOKEN_FLAG) is not None
    assert all(reply_row(db, i).status == ReplyStatus.PENDING for i in ids)
    assert send_due_replies(db, settings, graph_client, policy=FAST, now=later(60)).paused == PAGE_TOKEN_FLAG
    assert len(fake.calls) == 1
    assert clear_page_token_flag(db) is True
    assert sorted(send_due_replies(db, settings, graph_client, policy=FAST).sent) == ids


def test_duplicate_refusal_on_a_retry_counts_as_sent(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    [reply_id] = answer(db, make_ticket(db))
    fake.post_faults = ["refused", "duplicate"]
    send_due_replies(db, settings, graph_client, policy=FAST)
    report = send_due_replies(db, settings, graph_client, policy=FAST, now=later(120))
    assert report.sent == [reply_id] and reply_row(db, reply_id).status == ReplyStatus.SENT


def test_messenger_answer_outside_every_window_falls_back_to_a_public_reply(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db, channel=Channel.MESSENGER, comment_id="555000000000111_600000000077")
    [reply_id] = answer(db, ticket_id)
    fake.post_faults = ["window"]
    report = send_due_replies(db, settings, graph_client, policy=FAST)
    assert report.undeliverable == [reply_id]
    assert reply_row(db, reply_id).status == ReplyStatus.UNDELIVERABLE
    assert ticket_row(db, ticket_id).status == TicketStatus.FORWARDED
    send_due_replies(db, settings, graph_client, policy=FAST)
    [posted] = fake.comments["555000000000111_600000000077"]
    assert "Perbaikan jalan" in posted["message"]
    assert ticket_row(db, ticket_id).status == TicketStatus.ANSWERED


def test_messenger_answer_without_public_fallback_stays_undeliverable(db, settings, fake, graph_client) -> None:  # type: ignore[no-untyped-def]
    ticket_id = make_ticket(db, channel=Channel.MESSENGER)
    [reply_id] = answer(db, ticket_id)
    fake.post_faults = ["window"]
    send_due_replies(db, settings, graph_client, policy=FAST)
    send_due_replies(db, settings, graph_client, policy=FAST, now=later(60))
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Reply)) == 1
        assert session.scalars(select(AuditEntry.action).where(AuditEntry.ticket_id == ticket_id)).all() == [
            "reply_undeliverable"]
    assert reply_row(db, reply_id).status == ReplyStatus.UNDELIVERABLE and len(fake.calls) == 1


def test_operator_lists_and_retries_failed_replies_from_the_cli(database_url, db, settings, fake,
                                                                 graph_client) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from ntbcare.cli import cli
    from tests.conftest import BASE_ENV

    [reply_id] = answer(db, make_ticket(db))
    fake.post_faults = ["permission"]
    send_due_replies(db, settings, graph_client, policy=FAST)
    env = {**BASE_ENV, "DATABASE_URL": database_url, "REDIS_URL": ""}
    listed = CliRunner().invoke(cli, ["replies", "list", "--status", "failed", "--json"], env=env,
                                catch_exceptions=False)
    data = json.loads(listed.output)
    assert data["counts"] == {"failed": 1} and data["replies"][0]["id"] == reply_id
    assert "permission" in data["replies"][0]["error"] and data["replies"][0]["ticket"] == "NTB-2026-000001"
    retried = CliRunner().invoke(cli, ["replies", "retry", "--all-failed"], env=env, catch_exceptions=False)
    assert "1 reply queued again" in retried.output
    assert reply_row(db, reply_id).status == ReplyStatus.PENDING
    send_due_replies(db, settings, graph_client, policy=FAST)
    assert reply_row(db, reply_id).status == ReplyStatus.SENT


def test_without_a_page_token_nothing_is_sent_and_nothing_is_lost(db, settings, fake) -> None:  # type: ignore[no-untyped-def]
    [reply_id] = answer(db, make_ticket(db))
    report = send_due_replies(db, settings)  # BASE_ENV has no FB_PAGE_ACCESS_TOKEN
    assert report.paused == "no_page_token" and fake.calls == []
    assert reply_row(db, reply_id).status == ReplyStatus.PENDING


def test_one_shared_client_per_page_built_from_settings(database_url, db, fake) -> None:  # type: ignore[no-untyped-def]
    from bot.client import close_graph_clients, graph_client
    from tests.conftest import make_settings

    settings = make_settings(DATABASE_URL=database_url, FB_PAGE_ACCESS_TOKEN=TOKEN, GRAPH_API_BASE_URL=BASE,
                             GRAPH_API_VERSION=VERSION)
    try:
        first, second = graph_client(settings), graph_client(settings)
        assert first is second and first.governor is second.governor
        [reply_id] = answer(db, make_ticket(db))
        assert send_due_replies(db, settings, policy=FAST).sent == [reply_id]
        assert len(fake.comments["555000000000111_600000000001"]) == 1
    finally:
        close_graph_clients()
