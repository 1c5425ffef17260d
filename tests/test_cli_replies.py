"""`ntbcare replies send` and `ntbcare replies resume`: an operator sends due replies now and sees the counts,
and after Facebook refused the Page token (code 190 pauses all sending) resumes once the token is replaced."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from bot.client import close_graph_clients
from ntbcare.cli import cli
from ntbcare.core.models import Reply, ReplyStatus, TicketStatus
from tests import test_bot_outbox as outbox_tests
from tests.conftest import BASE_ENV
from tests.test_bot_outbox import BASE, TOKEN, VERSION, answer, make_ticket, ticket_row

fake = outbox_tests.fake

COMMENT = "555000000000111_{}"


@pytest.fixture
def ntbcare(database_url: str, db) -> Iterator:  # type: ignore[no-untyped-def]
    """Runs `ntbcare …` as an operator would, against the test database and the fake Graph API."""
    env = {**BASE_ENV, "DATABASE_URL": database_url, "REDIS_URL": "", "FB_PAGE_ACCESS_TOKEN": TOKEN,
           "GRAPH_API_BASE_URL": BASE, "GRAPH_API_VERSION": VERSION}

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, ["replies", *args], env=env)

    yield run
    close_graph_clients()


def statuses(db) -> list[str]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return list(session.scalars(select(Reply.status).order_by(Reply.id)))


def test_replies_send_sends_the_due_replies_now_and_prints_the_counts(ntbcare, db, fake) -> None:  # type: ignore[no-untyped-def]
    tickets = [make_ticket(db, n) for n in (1, 2, 3)]
    for ticket_id in tickets:
        answer(db, ticket_id)
    fake.post_faults = ["ok", "permission", "timeout"]

    result = ntbcare("send")

    assert result.exit_code == 0, result.output
    assert result.output.strip() == ("sent 1, found already posted 0, retry later 0, unknown 1, failed 1, "
                                     "undeliverable 0")
    [posted] = fake.comments[COMMENT.format(600000000001)]
    assert "NTB-2026-000001" in posted["message"]
    assert statuses(db) == [ReplyStatus.SENT, ReplyStatus.FAILED, ReplyStatus.UNKNOWN]
    assert ticket_row(db, tickets[0]).status == TicketStatus.ANSWERED
    assert ntbcare("send").output.strip().startswith("sent 0, found already posted 0")  # nothing sent twice
    assert len(fake.posts("/comments")) == 3


def test_replies_resume_after_a_refused_page_token_lets_sending_start_again(ntbcare, db, fake) -> None:  # type: ignore[no-untyped-def]
    tickets = [make_ticket(db, n) for n in (1, 2)]
    for ticket_id in tickets:
        answer(db, ticket_id)
    fake.post_faults = ["token"]
    assert "retry later 1" in ntbcare("send").output
    assert statuses(db) == [ReplyStatus.PENDING, ReplyStatus.PENDING]

    paused = ntbcare("send")
    assert paused.exit_code == 1 and "sending is paused: page_token_invalid" in paused.output
    assert len(fake.calls) == 1  # not a single call while paused

    resumed = ntbcare("resume")
    assert resumed.exit_code == 0 and resumed.output.strip() == "sending resumed"

    sent = ntbcare("send")
    assert sent.exit_code == 0 and sent.output.startswith("sent 2,")
    assert statuses(db) == [ReplyStatus.SENT, ReplyStatus.SENT]
    assert all(ticket_row(db, t).status == TicketStatus.ANSWERED for t in tickets)
    assert len(fake.comments[COMMENT.format(600000000001)]) == 1
    assert len(fake.comments[COMMENT.format(600000000002)]) == 1

    assert ntbcare("resume").output.strip() == "sending was not paused"
