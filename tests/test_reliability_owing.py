"""Issue 11's defect, one decision path at a time: whatever a stored delivery causes the page to owe (an answer to
a status question, the hiding of a comment that now shows personal data) is written in the transaction that
marks the delivery done. The process or the database going away right after that commit, before anything is
sent, leaves the reply owed: the sweeper's next round sends it, once."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

import ntbcare.pipeline.join as join
from ntbcare.core.models import Delivery, DeliveryStatus, Reply, ReplyStatus
from ntbcare.pipeline.runtime import Runtime
from tests.conftest import Poster, RecordingDispatcher, drain, fixture_bytes, make_settings
from tests.graph_standin import GraphStandIn
from tests.servers import serve_wsgi

PSID = "6543210987654321"
NIK = "5201011234567890"


class CrashAfterCommit(BaseException):
    """The worker killed (or the database gone) right after the ingest commit, before anything else ran."""


@pytest.fixture
def graph() -> GraphStandIn:
    return GraphStandIn(page_id="104000000000001")


@pytest.fixture
def make_runtime(database_url, db, graph):  # type: ignore[no-untyped-def]
    def build(url: str) -> Runtime:
        settings = make_settings(DATABASE_URL=database_url, FB_PAGE_ACCESS_TOKEN="page-token",
                                 GRAPH_API_BASE_URL=url, ACK_COMMENT="false", ACK_MESSENGER="false")
        return Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher())

    return build


def crash_after_ingest_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    real = join.process_batch

    def committed_then_killed(*args, **kwargs):  # type: ignore[no-untyped-def]
        real(*args, **kwargs)
        raise CrashAfterCommit

    monkeypatch.setattr(join, "process_batch", committed_then_killed)


def deliver(runtime: Runtime, body: dict | str) -> None:
    from ntbcare.app import create_app

    assert Poster(create_app(runtime=runtime).test_client())(body).status_code == 200


def replies(runtime: Runtime, channel: str) -> list[Reply]:
    with runtime.db.session() as session:
        return list(session.scalars(select(Reply).where(Reply.channel == channel).order_by(Reply.id)))


def status_question() -> dict:
    body = json.loads(fixture_bytes("messaging__message__text"))
    body["entry"][0]["messaging"][0]["message"] = {"mid": "m_status_1", "text": "cek status NTB-2026-000001"}
    body["entry"][0]["messaging"][0]["timestamp"] += 60_000
    return body


def test_a_status_question_is_answered_once_though_the_worker_died_after_the_commit(make_runtime, graph,
                                                                                    monkeypatch):
    with serve_wsgi(graph) as url:
        runtime = make_runtime(url)
        deliver(runtime, "messaging__message__text")
        drain(runtime, route=True)
        deliver(runtime, status_question())
        crash_after_ingest_commit(monkeypatch)
        with pytest.raises(CrashAfterCommit):
            drain(runtime, route=True)
        monkeypatch.undo()

        with runtime.db.session() as session:
            assert set(session.scalars(select(Delivery.status))) == {DeliveryStatus.DONE}
        [owed] = replies(runtime, "messenger")
        assert (owed.key, owed.status) == ("status:m_status_1", ReplyStatus.PENDING)
        assert graph.messages == []

        send_replies = runtime.pipeline.periodic_tasks()[2]  # the sweeper's round
        send_replies()
        send_replies()  # a second sweeper changes nothing
    [sent] = graph.messages
    assert sent["recipient"] == {"id": PSID} and "NTB-2026-000001" in sent["message"]["text"]
    assert [r.status for r in replies(runtime, "messenger")] == [ReplyStatus.SENT]


def test_an_edit_showing_a_nik_is_hidden_though_the_worker_died_after_the_commit(make_runtime, graph, monkeypatch):
    with serve_wsgi(graph) as url:
        runtime = make_runtime(url)
        deliver(runtime, "feed__comment__add")
        drain(runtime, route=True)
        edited = json.loads(fixture_bytes("feed__comment__edited"))
        edited["entry"][0]["changes"][0]["value"]["message"] = f"Jalan rusak, hubungi saya NIK {NIK}"
        deliver(runtime, edited)
        crash_after_ingest_commit(monkeypatch)
        with pytest.raises(CrashAfterCommit):
            drain(runtime, route=True)
        monkeypatch.undo()

        [owed] = replies(runtime, "hide")
        assert owed.status == ReplyStatus.PENDING and graph.hidden == set()
        runtime.pipeline.periodic_tasks()[2]()
        runtime.pipeline.periodic_tasks()[2]()
    assert graph.hidden == {owed.target_id}
    assert len([c for c in graph.calls if c.method == "POST" and c.status == 200]) == 1


def test_owing_that_fails_leaves_the_delivery_pending_not_done_without_its_reply(make_runtime, graph, monkeypatch):
    """The other side of one transaction: if owing fails, the delivery is not marked done either."""
    runtime = make_runtime("http://127.0.0.1:9")
    deliver(runtime, "messaging__message__text")
    drain(runtime, route=True)
    deliver(runtime, status_question())

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("database went away while owing")

    monkeypatch.setattr(join, "owe_status_reply", broken)
    drain(runtime, route=True)
    with runtime.db.session() as session:
        statuses = sorted(session.scalars(select(Delivery.status)))
    assert statuses == [DeliveryStatus.DONE, DeliveryStatus.PENDING]
    assert replies(runtime, "messenger") == []
