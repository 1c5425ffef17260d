"""Agency e-mail against a real SMTP server (aiosmtpd on 127.0.0.1): content, escaping, outages, rejections."""

from __future__ import annotations

import email
import socket
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from html.parser import HTMLParser

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from ntbcare.core.agency_mail import (
    ForwardContent,
    build_escalation_email,
    build_forward_email,
    build_reminder_email,
)
from ntbcare.core.mail_transport import MailPermanentError, MailTemporaryError, SmtpConfig, send_email
from tests.servers import RecordingHandler, free_port, reserved_port, smtp_server

__all__ = ["RecordingHandler", "free_port", "smtp_server"]  # still imported from here by other test modules

MAIL_FROM = "NTB Care <ntbcare@ntbprov.go.id>"
AGENCY = ["pengaduan@dikes.ntbprov.go.id", "kabid@dikes.ntbprov.go.id"]
CITIZEN_TEXT = 'Puskesmas tutup <script>alert("x")</script> <img src=x onerror=alert(1)>\nsudah 3 hari.'


def ticket(**changes: object) -> ForwardContent:
    values: dict[str, object] = {
        "number": "NTB-2026-000123",
        "agency_code": "DIKES",
        "agency_name": "Dinas Kesehatan Provinsi NTB",
        "text": CITIZEN_TEXT,
        "citizen_label": "Warga Lombok Timur",
        "channel": "comment",
        "location_label": "Kec. Sembalun, Kab. Lombok Timur",
        "facebook_url": "https://www.facebook.com/123_456",
        "created_at": datetime(2026, 11, 27, 6, 0, tzinfo=UTC),
        "deadline": datetime(2026, 12, 2, 6, 0, tzinfo=UTC),
        "urgent": False,
        "answer_url": "https://care.ntbprov.go.id/a/token-abc",
    }
    values.update(changes)
    return ForwardContent(**values)  # type: ignore[arg-type]


def config_for(port: int, extra: str = "starttls=0&timeout=5") -> SmtpConfig:
    return SmtpConfig.from_url(f"smtp://127.0.0.1:{port}?{extra}")


def parsed(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=default_policy)  # type: ignore[return-value]


class TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(name for name, _ in attrs)


def test_forward_email_arrives_with_both_parts_and_the_facts_the_agency_needs() -> None:
    handler = RecordingHandler()
    with smtp_server(handler) as port:
        send_email(config_for(port), build_forward_email(ticket(), mail_from=MAIL_FROM, to=AGENCY))
    [(recipients, raw)] = handler.received
    assert recipients == AGENCY
    message = parsed(raw)
    assert message["Subject"].startswith("[NTB Care] NTB-2026-000123: Laporan baru untuk Dinas Kesehatan")
    assert "batas jawab 2 Des 2026 14.00 WITA" in message["Subject"]
    assert message["X-NTBCare-Ticket"] == "NTB-2026-000123"
    assert message["Message-ID"].endswith("@ntbprov.go.id>")
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for body in (text, html):
        assert "NTB-2026-000123" in body
        assert "Rabu, 2 Desember 2026 pukul 14.00 WITA" in body
        assert "Kec. Sembalun, Kab. Lombok Timur" in body
        assert "https://www.facebook.com/123_456" in body
        assert "https://care.ntbprov.go.id/a/token-abc" in body
        assert "Mohon ditindaklanjuti" in body and "Bapak/Ibu" in body
    assert "sudah 3 hari." in text and "<script>" in text


def test_citizen_markup_arrives_escaped_in_html() -> None:
    handler = RecordingHandler()
    with smtp_server(handler) as port:
        send_email(config_for(port), build_forward_email(ticket(), mail_from=MAIL_FROM, to=AGENCY))
    html = parsed(handler.received[0][1]).get_body(("html",)).get_content()
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    collector = TagCollector()
    collector.feed(html)
    assert "script" not in collector.tags and "img" not in collector.tags
    assert "onerror" not in collector.attributes


def test_non_http_facebook_url_is_not_linked() -> None:
    message = build_forward_email(ticket(facebook_url="javascript:alert(1)"), mail_from=MAIL_FROM, to=AGENCY)
    assert "javascript:" not in message.get_body(("html",)).get_content()
    with pytest.raises(ValueError, match="answer_url"):
        build_forward_email(ticket(answer_url="javascript:alert(1)"), mail_from=MAIL_FROM, to=AGENCY)


def test_urgent_ticket_is_flagged_in_subject_and_body() -> None:
    message = build_forward_email(ticket(urgent=True), mail_from=MAIL_FROM, to=AGENCY)
    assert "[MENDESAK]" in message["Subject"]
    assert "LAPORAN MENDESAK" in message.get_body(("plain",)).get_content()


def test_reminder_and_escalation_say_how_much_time_is_left_or_overdue() -> None:
    reminder = build_reminder_email(ticket(), mail_from=MAIL_FROM, to=AGENCY,
                                    now=datetime(2026, 12, 1, 2, 30, tzinfo=UTC))
    assert reminder["Subject"].startswith("[NTB Care] Pengingat NTB-2026-000123")
    assert "sisa waktu 1 hari 3 jam 30 menit" in reminder.get_body(("plain",)).get_content()
    escalation = build_escalation_email(ticket(), mail_from=MAIL_FROM, to=["operator@ntbprov.go.id"],
                                        now=datetime(2026, 12, 2, 9, 0, tzinfo=UTC),
                                        console_url="https://care.ntbprov.go.id/operator/tickets/123")
    assert "Eskalasi NTB-2026-000123" in escalation["Subject"]
    body = escalation.get_body(("html",)).get_content()
    assert "terlambat 3 jam" in body and "/operator/tickets/123" in body
    assert "token-abc" not in escalation.as_string()


def test_outage_is_temporary_and_the_retry_is_delivered() -> None:
    message = build_forward_email(ticket(), mail_from=MAIL_FROM, to=AGENCY)
    with reserved_port() as down:  # nothing listens yet: the server is "down"
        port = down.getsockname()[1]
        with pytest.raises(MailTemporaryError):
            send_email(config_for(port), message)
        handler = RecordingHandler()
        with smtp_server(handler, sock=down):
            send_email(config_for(port), message)
    assert len(handler.received) == 1


def test_silent_server_times_out_as_temporary() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        with pytest.raises(MailTemporaryError):
            send_email(config_for(port, "starttls=0&timeout=0.3"),
                       build_forward_email(ticket(), mail_from=MAIL_FROM, to=AGENCY))


def test_rejected_recipient_is_permanent() -> None:
    handler = RecordingHandler(rcpt_reply="550 5.1.1 Mailbox unavailable")
    with smtp_server(handler) as port, pytest.raises(MailPermanentError) as caught:
        send_email(config_for(port), build_forward_email(ticket(), mail_from=MAIL_FROM, to=AGENCY))
    assert caught.value.smtp_code == 550


def test_spam_rejection_at_data_is_permanent() -> None:
    handler = RecordingHandler(data_reply="554 5.7.1 Message rejected as spam")
    with smtp_server(handler) as port, pytest.raises(MailPermanentError) as caught:
        send_email(config_for(port), build_forward_email(ticket(), mail_from=MAIL_FROM, to=AGENCY))
    assert caught.value.smtp_code == 554


class OneBadMailboxHandler(RecordingHandler):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("kabid@"):
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_one_rejected_contact_does_not_block_delivery_to_the_others(caplog: pytest.LogCaptureFixture) -> None:
    handler = OneBadMailboxHandler()
    with smtp_server(handler) as port:
        send_email(config_for(port), build_forward_email(ticket(), mail_from=MAIL_FROM, to=AGENCY))
    assert [recipients for recipients, _ in handler.received] == [["pengaduan@dikes.ntbprov.go.id"]]
    assert "kabid@dikes.ntbprov.go.id" in caplog.text


def test_greylisting_4xx_is_temporary() -> None:
    handler = RecordingHandler(data_reply="451 4.7.1 Greylisted, try again later")
    with smtp_server(handler) as port, pytest.raises(MailTemporaryError) as caught:
        send_email(config_for(port), build_forward_email(ticket(), mail_from=MAIL_FROM, to=AGENCY))
    assert caught.value.smtp_code == 451


def test_credentials_from_smtp_url_are_used_and_a_wrong_password_is_permanent() -> None:
    logins: list[bytes] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append(auth_data.login)
        return AuthResult(success=auth_data == LoginPassword(b"mailer", b"s3cret/pass"), handled=False)

    handler = RecordingHandler()
    with smtp_server(handler, authenticator=authenticator, auth_require_tls=False,
                     auth_exclude_mechanism=["LOGIN"]) as port:
        good = SmtpConfig.from_url(f"smtp://mailer:s3cret%2Fpass@127.0.0.1:{port}?starttls=0")
        send_email(good, build_forward_email(ticket(), mail_from=MAIL_FROM, to=AGENCY))
        bad = SmtpConfig.from_url(f"smtp://mailer:wrong@127.0.0.1:{port}?starttls=0")
        with pytest.raises(MailPermanentError):
            send_email(bad, build_forward_email(ticket(), mail_from=MAIL_FROM, to=AGENCY))
    assert logins == [b"mailer", b"mailer"]
    assert len(handler.received) == 1


def test_smtp_url_parsing() -> None:
    config = SmtpConfig.from_url("smtp://user:p%40ss@mail.ntbprov.go.id:587?starttls=1")
    assert (config.host, config.port, config.username, config.password, config.security) == (
        "mail.ntbprov.go.id", 587, "user", "p@ss", "starttls")
    assert "p@ss" not in repr(config)
    implicit = SmtpConfig.from_url("smtps://user:pw@mail.ntbprov.go.id?timeout=7.5")
    assert (implicit.port, implicit.security, implicit.timeout) == (465, "tls", 7.5)
    relay = SmtpConfig.from_url("smtp://localhost")
    assert (relay.port, relay.security, relay.username) == (25, "none", "")
    assert SmtpConfig.from_url("smtp://user:pw@mail.ntbprov.go.id").security == "starttls"


@pytest.mark.parametrize("url", [
    "http://mail.ntbprov.go.id", "smtp://", "smtp://host:99999", "smtp://host?starttls=maybe",
    "smtp://host?tls=1", "smtps://host?starttls=1", "smtp://host?timeout=abc", "smtp://host/path",
])
def test_malformed_smtp_url_names_the_setting_and_hides_the_password(url: str) -> None:
    with pytest.raises(ValueError, match="SMTP_URL") as caught:
        SmtpConfig.from_url(url.replace("://", "://user:hunter2@", 1) if "host" in url else url)
    assert "hunter2" not in str(caught.value)


XSS_PAYLOADS = [
    "<script>alert(1)</script>", "<SCRIPT SRC=//evil.example/x.js></SCRIPT>", "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>", "<svg><script>alert(1)</script></svg>", "<body onload=alert(1)>",
    "<iframe src=javascript:alert(1)>", "<a href=\"javascript:alert(1)\">klik</a>",
    "<a href='x' onclick=alert(1)>a</a>",
    "\"><script>alert(1)</script>", "'><img src=x onerror=alert(1)>", "</div><script>alert(1)</script>",
    "</td></tr></table><img src=x onerror=alert(1)>", "<style>*{display:none}</style>", "<link rel=stylesheet href=x>",
    "<meta http-equiv=refresh content='0;url=https://evil.example'>", "<base href=https://evil.example/>",
    "<form action=https://evil.example><input name=p></form>", "<input autofocus onfocus=alert(1)>",
    "<details open ontoggle=alert(1)>", "<video><source onerror=alert(1)></video>", "<audio src=x onerror=alert(1)>",
    "<object data=javascript:alert(1)>", "<embed src=javascript:alert(1)>", "<math><mtext><script>alert(1)</script>",
    "<marquee onstart=alert(1)>", "<table background=javascript:alert(1)>", "<div style=\"background:url(x)\">",
    "<img src=\"x\" alt=\"\" onmouseover=\"alert(1)\">", "<IMG SRC=JaVaScRiPt:alert(1)>",
    "<img/src=x/onerror=alert(1)>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>", "<!--<script>alert(1)-->", "<![CDATA[<script>alert(1)</script>]]>",
    "&lt;script&gt;alert(1)&lt;/script&gt;", "&#60;script&#62;alert(1)&#60;/script&#62;", "\u003cscript\u003ealert(1)",
    "<textarea><script>alert(1)</script></textarea>", "<title><script>alert(1)</script></title>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">", "<select onfocus=alert(1) autofocus>",
    "<keygen autofocus onfocus=alert(1)>", "<isindex action=javascript:alert(1) type=image>",
    "<button formaction=javascript:alert(1)>x</button>", "<frameset onload=alert(1)>", "<applet code=x>",
    "<xss id=x tabindex=1 onfocusin=alert(1)></xss>", "<a href=\"data:text/html;base64,PHNjcmlwdD4=\">x</a>",
    "<img src=x onerror=&#97;lert(1)>", "<svg><a xlink:href=javascript:alert(1)><text>x</text></a></svg>",
    "javascript:alert(1)", "{{ 7*7 }} {% raw %}", "\u202e<script>alert(1)</script>", "<ſcript>alert(1)</ſcript>",
]


def html_shape(content: ForwardContent) -> tuple[list[str], list[str]]:
    collector = TagCollector()
    collector.feed(build_forward_email(content, mail_from=MAIL_FROM, to=AGENCY).get_body(("html",)).get_content())
    return collector.tags, collector.attributes


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_citizen_derived_fields_never_add_html_elements_or_attributes(payload: str) -> None:
    baseline = html_shape(ticket(text="aman", citizen_label="aman", location_label="aman"))
    assert html_shape(ticket(text=payload, citizen_label=payload, location_label=payload)) == baseline
