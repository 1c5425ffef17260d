"""Bounced e-mail, end to end: the service sends a forward e-mail through a loopback SMTP server with its own VERP
envelope sender; a mail system's bounce of it (real layouts: tests/fixtures/mail/) is piped into `ntbcare mail
bounce` as Postfix would; the mail becomes "bounced" with the remote server's words, the ticket is back in the
review queue (the agency never got it), and the console shows both. Forged bounces, delays and auto-replies
mark nothing."""

from __future__ import annotations

import email
import email.policy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from ntbcare.app import create_app
from ntbcare.cli import cli
from ntbcare.core.bounces import MAIL_HEADER, bounce_address, signed_id
from ntbcare.core.models import Agency, AuditEntry, MailStatus, OutboundMail, Ticket, TicketStatus
from ntbcare.core.settings import ConfigError, Settings
from ntbcare.pipeline import ticket_ops
from ntbcare.pipeline.agency_access import send_sign_in
from ntbcare.pipeline.runtime import Runtime
from tests.conftest import BASE_ENV, RecordingDispatcher, make_settings
from tests.ops_helpers import login, make_operator
from tests.ops_tickets_seed import PLN, PUPR, make_ticket, seed_agencies_with_contacts, ticket_of
from tests.servers import RecordingHandler, smtp_server

FIXTURES = Path(__file__).parent / "fixtures" / "mail"
MAIL_FROM = "NTB Care <pengaduan@ntbprov.go.id>"
SECOND_PUPR = "sekretariat@pupr.ntbprov.test"


@dataclass
class Sent:
    """The service after forwarding tickets: its database, what the SMTP server accepted, how to run the CLI."""

    db: Any
    url: str
    runtime: Runtime
    handler: RecordingHandler

    def message(self, index: int = -1) -> tuple[str, bytes]:
        """Envelope sender and bytes of an accepted message."""
        return self.handler.senders[index], self.handler.received[index][1]

    def bounce(self, raw: bytes, *, recipient: str | None = None, extra: tuple[str, ...] = ()) -> Any:
        env = {**BASE_ENV, "DATABASE_URL": self.url, "REDIS_URL": "", "MAIL_FROM": MAIL_FROM}
        if recipient:
            env["ORIGINAL_RECIPIENT"] = recipient  # what Postfix's local(8) hands a pipe
        return CliRunner().invoke(cli, ["mail", "bounce", "--json", *extra], input=raw, env=env)


@pytest.fixture
def sent(database_url: str, db: Any) -> Any:
    seed_agencies_with_contacts(db)
    with db.scope() as session:
        session.execute(update(Agency).where(Agency.code == "PUPRPKP").values(emails=[PUPR, SECOND_PUPR]))
    make_operator(db, "ani", "kata-sandi-ani-1", name="Ani")
    handler = RecordingHandler()
    with smtp_server(handler) as port:
        settings = make_settings(DATABASE_URL=database_url, MAIL_FROM=MAIL_FROM,
                                 SMTP_URL=f"smtp://127.0.0.1:{port}?starttls=0&timeout=5")
        yield Sent(db, database_url, Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher()), handler)


def returned(name: str, sender: str, content: bytes, recipient: str, *, to: str | None = None) -> bytes:
    """The fixture ``name`` as that mail system would write it about the message we sent."""
    headers = content.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode()
    text = (FIXTURES / name).read_text(encoding="utf-8")
    for marker, value in (("{{bounce_to}}", to or sender), ("{{recipient}}", recipient),
                          ("{{original_headers}}", headers.replace("\r\n", "\n")),
                          ("{{original_message}}", content.decode().replace("\r\n", "\n"))):
        text = text.replace(marker, value)
    return text.replace("\n", "\r\n").encode()


def forward(sent: Sent, n: int, agency: str = "PLN") -> tuple[str, int]:
    number = make_ticket(sent.db, n, text=f"Tiang listrik roboh di Pagesangan {n}")
    ticket_ops.assign(sent.runtime.pipeline, number, agency, actor="operator:ani")
    with sent.db.session() as session:
        mail_id = session.scalar(select(OutboundMail.id).where(OutboundMail.kind == "forward")
                                 .order_by(OutboundMail.id.desc()))
    assert ticket_of(sent.db, number).status == TicketStatus.FORWARDED
    return number, mail_id


def mail_of(db: Any, mail_id: int) -> OutboundMail:
    with db.session() as session:
        mail = session.get(OutboundMail, mail_id)
        session.expunge(mail)
        return mail


def test_every_mail_goes_out_with_its_own_signed_return_path(sent) -> None:  # type: ignore[no-untyped-def]
    number, mail_id = forward(sent, 1)
    ticket_ops.resend_link(sent.runtime.pipeline, number, actor="operator:ani")
    send_sign_in(sent.db, sent.runtime.settings, PLN)
    with sent.db.session() as session:
        ids = list(session.scalars(select(OutboundMail.id).order_by(OutboundMail.id)))
    assert len(ids) == 3 and ids[0] == mail_id
    settings = sent.runtime.settings
    assert sent.handler.senders == [bounce_address(settings, i) for i in ids]
    assert sent.handler.senders[0] == f"bounces+{mail_id}.{signed_id(settings, mail_id).split('.')[1]}@ntbprov.go.id"
    for (_to, content), mail in zip(sent.handler.received, ids, strict=True):
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert parsed[MAIL_HEADER] == signed_id(settings, mail)
        assert parsed["From"] == MAIL_FROM  # what people see is unchanged
    chosen = make_settings(MAIL_FROM=MAIL_FROM, BOUNCE_ADDRESS="kembali@mail.ntbprov.go.id")
    assert bounce_address(chosen, 7).startswith("kembali+7.") and bounce_address(chosen, 7).endswith(
        "@mail.ntbprov.go.id")
    for bad in ("bounces", "Bounces <b@x.test>", "b+x@x.test", "b@localhost"):
        with pytest.raises(ConfigError, match="BOUNCE_ADDRESS"):
            Settings.from_env({**BASE_ENV, "BOUNCE_ADDRESS": bad})


def test_a_bounced_forward_puts_its_ticket_back_in_review_and_the_console_says_why(sent) -> None:  # type: ignore[no-untyped-def]
    number, mail_id = forward(sent, 1)
    sender, content = sent.message()
    raw = returned("postfix_user_unknown.eml", sender, content, PLN)

    result = sent.bounce(raw, recipient=sender)
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output)
    assert outcome["outcome"] == "bounced" and outcome["mail_id"] == mail_id and outcome["back_in_review"]
    mail = mail_of(sent.db, mail_id)
    assert mail.status == MailStatus.BOUNCED and mail.bounced_to == [PLN] and mail.bounced_at is not None
    assert "5.1.1" in mail.error and "User unknown in virtual mailbox table" in mail.error
    ticket = ticket_of(sent.db, number)
    assert ticket.status == TicketStatus.REVIEW and ticket.review_reason == "forward_bounced"
    with sent.db.session() as session:
        assert ("mail_bounced", "mailer") in [(a.action, a.actor) for a in session.scalars(select(AuditEntry))]

    again = sent.bounce(raw, recipient=sender)  # the same bounce piped twice
    assert json.loads(again.output)["outcome"] == "already"
    assert ticket_of(sent.db, number).status == TicketStatus.REVIEW

    client = create_app(runtime=sent.runtime).test_client()
    assert login(client, "ani", "kata-sandi-ani-1").status_code == 303
    review = client.get("/ops/review").get_data(as_text=True)
    assert "E-mail ke instansi terpental (ditolak server penerima): instansi belum menerimanya" in review
    dashboard = client.get("/ops/").get_data(as_text=True)
    assert '<span class="figure">1</span><span class="label">e-mail gagal terkirim atau terpental' in dashboard
    listed = client.get("/ops/attention/mails").get_data(as_text=True)
    assert "terpental" in listed and "User unknown in virtual mailbox table" in listed and number in listed
    page = client.get(f"/ops/tickets/{number}").get_data(as_text=True)
    assert "terpental" in page and "Riwayat: mail_bounced" in page

    # The operator fixes the address and gives the ticket to PLN again: a new forward e-mail goes out.
    with sent.db.scope() as session:
        session.execute(update(Agency).where(Agency.code == "PLN").values(emails=["humas@pln-ntb.test"]))
    ticket_ops.assign(sent.runtime.pipeline, number, "PLN", actor="operator:ani")
    assert ticket_of(sent.db, number).status == TicketStatus.FORWARDED
    assert sent.handler.received[-1][0] == ["humas@pln-ntb.test"]


@pytest.mark.parametrize(("fixture", "status", "words"), [
    ("exchange_recipient_not_found.eml", "5.1.10", "RESOLVER.ADR.RecipientNotFound"),
    ("exim_plain.eml", "5.2.1", "Mailbox disabled for this recipient"),
    ("qmail_plain.eml", "5.2.2", "Mailbox full"),
])
def test_other_mail_systems_bounces_are_read_too(sqlite_url, fixture, status, words) -> None:  # type: ignore[no-untyped-def]
    from ntbcare.core.db import Database
    from ntbcare.core.migrate import upgrade

    db = Database(sqlite_url)
    upgrade(db.engine)
    seed_agencies_with_contacts(db)
    handler = RecordingHandler()
    with smtp_server(handler) as port:
        settings = make_settings(DATABASE_URL=sqlite_url, MAIL_FROM=MAIL_FROM,
                                 SMTP_URL=f"smtp://127.0.0.1:{port}?starttls=0&timeout=5")
        sent = Sent(db, sqlite_url, Runtime(settings=settings, db=db, dispatcher=RecordingDispatcher()), handler)
        number, mail_id = forward(sent, 1)
    sender, content = sent.message()
    result = sent.bounce(returned(fixture, sender, content, PLN), recipient=sender)
    assert json.loads(result.output)["outcome"] == "bounced", result.output
    mail = mail_of(db, mail_id)
    assert mail.status == MailStatus.BOUNCED and mail.bounced_to == [PLN]
    assert status in mail.error and words in mail.error
    assert ticket_of(db, number).review_reason == "forward_bounced"
    db.dispose()


def test_without_the_envelope_the_quoted_signed_header_names_the_mail(sent) -> None:  # type: ignore[no-untyped-def]
    """A bounce that reached the plain bounce address (an alias that dropped the +extension) still names its mail
    through the X-NTBCare-Mail header it quotes."""
    _number, mail_id = forward(sent, 1)
    sender, content = sent.message()
    raw = returned("exim_plain.eml", sender, content, PLN, to="bounces@ntbprov.go.id")
    assert json.loads(sent.bounce(raw).output)["mail_id"] == mail_id
    assert mail_of(sent.db, mail_id).status == MailStatus.BOUNCED


def test_a_forged_bounce_marks_nothing(sent) -> None:  # type: ignore[no-untyped-def]
    number, mail_id = forward(sent, 1)
    sender, content = sent.message()
    local, domain = sender.split("@")
    forged_sig = f"{local.split('.')[0]}.{'0' * 16}@{domain}"  # the right mail id, a made-up signature
    other_mail = f"bounces+{mail_id + 1}.{sender.split('.')[1].split('@')[0]}@{domain}"  # a real signature, moved
    for address in (forged_sig, other_mail):
        raw = returned("postfix_user_unknown.eml", address, content.replace(
            signed_id(sent.runtime.settings, mail_id).encode(), b"1.0000000000000000"), PLN)
        result = sent.bounce(raw, recipient=address)
        assert result.exit_code == 0 and json.loads(result.output)["outcome"] == "forged", result.output
    plain = returned("postfix_user_unknown.eml", "bounces@ntbprov.go.id", content.replace(
        signed_id(sent.runtime.settings, mail_id).encode(), b"x"), PLN)
    assert json.loads(sent.bounce(plain, recipient="bounces@ntbprov.go.id").output)["outcome"] == "not_ours"
    assert mail_of(sent.db, mail_id).status == MailStatus.SENT
    assert ticket_of(sent.db, number).status == TicketStatus.FORWARDED


def test_delays_and_auto_replies_mark_nothing(sent) -> None:  # type: ignore[no-untyped-def]
    number, mail_id = forward(sent, 1)
    sender, content = sent.message()
    for fixture, outcome in (("postfix_delayed.eml", "delayed"), ("vacation_reply.eml", "not_a_bounce")):
        result = sent.bounce(returned(fixture, sender, content, PLN), recipient=sender)
        assert json.loads(result.output)["outcome"] == outcome, result.output
    assert mail_of(sent.db, mail_id).status == MailStatus.SENT
    assert ticket_of(sent.db, number).status == TicketStatus.FORWARDED


def test_one_of_two_contacts_bouncing_keeps_the_ticket_with_the_agency(sent) -> None:  # type: ignore[no-untyped-def]
    number, mail_id = forward(sent, 1, agency="PUPRPKP")
    sender, content = sent.message()
    first = sent.bounce(returned("postfix_user_unknown.eml", sender, content, SECOND_PUPR), recipient=sender)
    assert json.loads(first.output)["back_in_review"] is False
    mail = mail_of(sent.db, mail_id)
    assert mail.status == MailStatus.BOUNCED and mail.bounced_to == [SECOND_PUPR]
    assert ticket_of(sent.db, number).status == TicketStatus.FORWARDED  # pupr@ got it
    second = sent.bounce(returned("qmail_plain.eml", sender, content, PUPR), recipient=sender)
    assert json.loads(second.output)["back_in_review"] is True
    assert sorted(mail_of(sent.db, mail_id).bounced_to) == sorted([PUPR, SECOND_PUPR])
    assert ticket_of(sent.db, number).review_reason == "forward_bounced"


def test_when_the_database_is_down_the_mail_system_is_asked_to_retry(sent) -> None:  # type: ignore[no-untyped-def]
    sender, content = forward(sent, 1) and sent.message()
    env = {**BASE_ENV, "DATABASE_URL": "postgresql://127.0.0.1:9/ntbcare", "REDIS_URL": "", "MAIL_FROM": MAIL_FROM,
           "ORIGINAL_RECIPIENT": sender}
    result = CliRunner().invoke(cli, ["mail", "bounce"], input=returned("postfix_user_unknown.eml", sender, content,
                                                                          PLN), env=env)
    assert result.exit_code == 75, result.output
    assert "try again later" in result.output
    with sent.db.session() as session:
        assert session.scalar(select(Ticket.status)) == TicketStatus.FORWARDED
