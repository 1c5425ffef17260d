"""LOG_FORMAT=json: one JSON object per line with the ids of the work, and no secret, token or personal data in
any line of a whole run (webhook → embedded worker → acknowledgement → agency link → answer on Facebook), logged
at DEBUG so that nothing is left out."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from bot.graph import appsecret_proof
from ntbcare.core.logformat import JsonFormatter, configure_logging, log_context
from tests.conftest import APP_SECRET
from tests.servers import eventually
from tests.test_e2e_answer_loop import ANSWER, comment_event, loop  # noqa: F401  (the loop fixture)

NIK = "5201140101900001"
PHONE = "081234567890"
CITIZEN = "Baiq Nurul Hidayati"  # the name comment_event() writes the comment as
PAGE_TOKEN = "page-token"  # what the loop fixture configures (and its Graph stand-in expects)
TEST_SERVERS = {"mail", "werkzeug"}
TEXT = (f"Listrik padam sejak pagi di Kelurahan Pagesangan Mataram, tolong PLN. NIK saya {NIK}, "
        f"hubungi {PHONE}")


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_a_whole_run_logs_json_lines_with_ids_and_nothing_personal_or_secret(loop, json_lines):  # noqa: F811
    loop.webhook(comment_event(TEXT))
    ticket = loop.forwarded_ticket(acknowledged=1)
    [(_, message)] = loop.emails()
    body = message.get_body(("plain",)).get_content()
    link_token = re.search(r"/a/([\w.-]+)", body).group(1)
    response = loop.answer_from_email(ANSWER)
    assert response.status_code == 200
    eventually(lambda: any(ANSWER in reply["message"] for reply in loop.graph.replies_under(ticket.comment_id)),
               what="the answer under the comment")
    logging.getLogger("ntbcare.test").info("agency link opened: %s/a/%s", loop.app_url, link_token)

    # The test's own servers (aiosmtpd as the agency's mail server, werkzeug serving the stand-ins) log what they
    # receive; they are not part of the service, so their lines are left out.
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    lines = [line for line in lines if line["logger"].split(".")[0] not in TEST_SERVERS]
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    assert len(lines) > 10
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any("delivery_ids" in line for line in lines)
    assert any("reply_id" in line for line in lines)
    forbidden = {"app secret": APP_SECRET, "page token": PAGE_TOKEN, "agency link token": link_token, "NIK": NIK,
                 "phone": PHONE, "citizen name": CITIZEN, "first name": "Baiq",
                 "appsecret_proof": appsecret_proof(APP_SECRET, PAGE_TOKEN)}
    leaked = {what: value for what, value in forbidden.items() if value in text}
    assert leaked == {}, leaked


def test_context_ids_and_record_extras_reach_the_line():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("ntbcare.test.context")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        with log_context(job_id="job-1", delivery_ids=list(range(60))):
            with log_context(ticket_ids=[7]):
                logger.warning("inner %s", "line", extra={"mail_id": 3})
            logger.error("outer")
        logger.info("after")
    finally:
        logger.removeHandler(handler)
    inner, outer, after = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inner["message"] == "inner line" and inner["job_id"] == "job-1" and inner["ticket_ids"] == [7]
    assert inner["mail_id"] == 3 and inner["delivery_ids"][:2] == [0, 1] and inner["delivery_ids"][-1] == "+10"
    assert outer["level"] == "ERROR" and "ticket_ids" not in outer and outer["job_id"] == "job-1"
    assert set(after) == {"time", "level", "logger", "message"}


def test_configure_logging_leaves_a_root_logger_someone_else_configured(monkeypatch):
    root = logging.getLogger()
    foreign = logging.NullHandler()
    monkeypatch.setattr(root, "handlers", [foreign])
    configure_logging("DEBUG", "json")
    assert root.handlers == [foreign]
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    configure_logging("WARNING", "json")
    configure_logging("INFO", "json")  # replaces its own handler rather than adding a second
    [ours] = root.handlers
    assert isinstance(ours.formatter, JsonFormatter) and root.level == logging.INFO
