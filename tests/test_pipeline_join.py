"""The pipeline's joins: a routing decision and everything it owes (forward e-mail, acknowledgements) commit
together, so a crash between them leaves nothing half done, and the sweeper's next round finishes the job."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

import ntbcare.pipeline.join as join
from ntbcare.core.models import Agency, OutboundMail, Reply, Ticket, TicketStatus, utcnow
from ntbcare.pipeline.bootstrap import seed_agencies
from ntbcare.pipeline.runtime import Runtime
from routing.registry import load_registry
from tests.conftest import RecordingDispatcher, drain, make_settings
from tests.test_routing_flow import PLN_TEXT, comment, ingest


class CrashBetweenDecisionAndAcknowledgement(RuntimeError):
    """Stands for the process or the database going away after routing, before the replies are owed."""


@pytest.fixture
def pipeline_runtime(database_url, db):  # type: ignore[no-untyped-def]
    # No SMTP server and no Graph API: owing is what is under test, not sending (sends fail and wait).
    settings = make_settings(DATABASE_URL=database_url, FB_PAGE_ACCESS_TOKEN="page-token",
                             GRAPH_API_BASE_URL="http://127.0.0.1:9")
    with db.scope() as session:
        seed_agencies(session, load_registry())
        session.execute(update(Agency).where(Agency.code == "PLN").values(emails=["pengaduan@pln-ntb.test"]))
    return Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher())


def counts(runtime: Runtime) -> tuple[str, int, int]:
    with runtime.db.session() as session:
        status = session.scalars(select(Ticket.status)).one()
        mails = session.scalar(select(func.count()).select_from(OutboundMail)) or 0
        acks = session.scalar(select(func.count()).select_from(Reply).where(Reply.kind == "ack")) or 0
    return status, mails, acks


def test_a_crash_before_the_acknowledgements_are_owed_leaves_the_ticket_unrouted(pipeline_runtime, monkeypatch):
    def crash(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise CrashBetweenDecisionAndAcknowledgement

    monkeypatch.setattr(join, "acknowledge_tickets", crash)
    ingest(pipeline_runtime, None, comment(1, PLN_TEXT))  # routing fails inside ingest; the ticket stays "new"

    assert counts(pipeline_runtime) == (TicketStatus.NEW, 0, 0)


def test_the_next_sweeper_round_routes_it_and_owes_each_reply_once(pipeline_runtime, monkeypatch):
    original = join.acknowledge_tickets
    monkeypatch.setattr(join, "acknowledge_tickets",
                        lambda *a, **k: (_ for _ in ()).throw(CrashBetweenDecisionAndAcknowledgement()))
    ingest(pipeline_runtime, None, comment(2, PLN_TEXT))
    monkeypatch.setattr(join, "acknowledge_tickets", original)

    route_stragglers = pipeline_runtime.pipeline.periodic_tasks()[0]
    with pipeline_runtime.db.scope() as session:  # the sweeper takes tickets left "new" for over 30 s
        session.execute(update(Ticket).values(created_at=utcnow() - timedelta(minutes=5)))
    route_stragglers()
    route_stragglers()  # a second round (another worker's sweeper) changes nothing

    status, mails, acks = counts(pipeline_runtime)
    assert (status, mails) == (TicketStatus.ROUTED, 1)
    assert acks == 1  # the public reply under the comment (the January comment is past the private-reply window)


def test_routing_and_acknowledging_happen_in_one_pass(pipeline_runtime):
    ingest(pipeline_runtime, None, comment(3, PLN_TEXT))
    drain(pipeline_runtime, route=True)  # a redelivery of the same work changes nothing

    status, mails, acks = counts(pipeline_runtime)
    assert (status, mails, acks) == (TicketStatus.ROUTED, 1, 1)
