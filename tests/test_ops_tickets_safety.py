"""The console's ticket pages under attack and under contention: a corpus of XSS payloads in citizen text,
names, photos' links, agency answers, replies and notes rendered inert on every console page, and two
operators acting on one ticket at once (one wins, the other is told, nothing half done)."""

from __future__ import annotations

import threading
import time
from html.parser import HTMLParser
from typing import Any

import pytest
from sqlalchemy import func, select, update

from ntbcare.core.models import (
    Agency,
    AgencyAnswer,
    Operator,
    OutboundMail,
    Reply,
    ReplyStatus,
    ReplyTemplate,
    RoutingDecision,
    Ticket,
    TicketMessage,
    TicketNote,
    TicketStatus,
)
from ntbcare.pipeline import ticket_merge, ticket_ops
from ntbcare.pipeline.decisions import DecisionRefused
from ntbcare.pipeline.ticket_claim import TicketChanged, claimed
from routing import decisions as routing_decisions
from tests.ops_helpers import login, make_operator
from tests.ops_tickets_seed import make_ticket, seed_agencies_with_contacts, ticket_of

XSS = [
    '<script>alert(1)</script>',
    '<SCRIPT SRC=//evil.test/x.js></SCRIPT>',
    '<img src=x onerror=alert(1)>',
    '<img src="x" onerror="alert(document.cookie)">',
    '<svg onload=alert(1)>',
    '<svg><script>alert(1)</script></svg>',
    '<body onload=alert(1)>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>">',
    '"><script>alert(1)</script>',
    "'><script>alert(1)</script>",
    '</textarea><script>alert(1)</script>',
    '</title><script>alert(1)</script>',
    '</blockquote><script>alert(1)</script>',
    '<a href="javascript:alert(1)">klik</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>',
    '<details open ontoggle=alert(1)>',
    '<input autofocus onfocus=alert(1)>',
    '<select onfocus=alert(1) autofocus>',
    '<video><source onerror=alert(1)></video>',
    '<audio src=x onerror=alert(1)>',
    '<marquee onstart=alert(1)>',
    '<object data="javascript:alert(1)">',
    '<embed src="javascript:alert(1)">',
    '<form action="javascript:alert(1)"><button>x</button></form>',
    '<button formaction="javascript:alert(1)">x</button>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<link rel="stylesheet" href="javascript:alert(1)">',
    '<style>@import "javascript:alert(1)";</style>',
    '<div style="background:url(javascript:alert(1))">',
    '<base href="javascript:alert(1)//">',
    '{{ 7*7 }}<b>ssti</b>',
    '{% raw %}<i>x</i>{% endraw %}',
    '${alert(1)}<u>x</u>',
    '<scr<script>ipt>alert(1)</script>',
    '<<script>alert(1);//<</script>',
    '<img """><script>alert(1)</script>">',
    '<img src=`x` onerror=alert(1)>',
    '<IMG SRC=JaVaScRiPt:alert(1)>',
    '<img src=x:alert(alt) onerror=eval(src) alt=0>',
    '<svg/onload=alert(1)>',
    '<x onclick=alert(1)>klik</x>',
    '<table background="javascript:alert(1)">',
    '<isindex action=javascript:alert(1) type=image>',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    '<template><script>alert(1)</script></template>',
    '<!--<img src="--><img src=x onerror=alert(1)//">',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '\u003cscript\u003ealert(1)\u003c/script\u003e',
    '<img src=x onerror=\u0061lert(1)>',
    '"onmouseover="alert(1)',
    "' onmouseover='alert(1)",
    '</script><script>alert(1)</script>',
]
SAFE_URL_STARTS = ("/", "#", "http://", "https://")
DANGEROUS_URLS = ["javascript:alert(1)", "data:text/html,<script>alert(1)</script>", " javascript:alert(1)"]


class Inspector(HTMLParser):
    """Collects what would make a page run something: scripts, event handlers, script URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"iframe", "object", "embed", "svg", "math", "base"}:
            self.problems.append(f"<{tag}>")
        if tag == "meta" and any(name == "http-equiv" for name, _ in attrs):
            self.problems.append("<meta http-equiv>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}>")
            urls = {"href", "src", "action", "formaction", "data", "background"}
            if name in urls and value is not None and not value.startswith(SAFE_URL_STARTS):
                self.problems.append(f"<{tag} {name}={value!r}>")
        if tag == "script":
            src = dict(attrs).get("src") or ""
            if not src.startswith("/static/"):
                self.problems.append("inline <script>")


def inert(page: str) -> list[str]:
    inspector = Inspector()
    inspector.feed(page)
    return inspector.problems


def inert_page(client: Any, path: str) -> str:
    """The page at ``path``: answered, nothing on it would run, no payload in it unescaped."""
    response = client.get(path)
    assert response.status_code == 200, path
    page = response.get_data(as_text=True)
    assert inert(page) == [], (path, inert(page)[:5])
    for payload in XSS:
        if any(ch in payload for ch in "<>\"'"):
            assert payload not in page, (path, payload)
    return page


@pytest.fixture
def attacked(db: Any) -> Any:
    """Tickets whose every citizen-, agency- and operator-written field carries a payload."""
    seed_agencies_with_contacts(db)
    make_operator(db, "ani", "kata-sandi-ani-1", name="Ani")
    for n, payload in enumerate(XSS, start=1):
        status = TicketStatus.REVIEW if n % 2 else TicketStatus.FORWARDED
        make_ticket(db, n, text=f"Keluhan {payload}", name=payload, status=status,
                    agency=None if n % 2 else "PLN", hours_ago=60 + n, location="5271",
                    candidates=[{"agency": "PLN", "score": 0.5}, {"agency": payload, "score": 0.4}])
    with db.scope() as session:
        tickets = session.scalars(select(Ticket).order_by(Ticket.id)).all()
        for ticket, payload in zip(tickets, XSS, strict=True):
            ticket.attachments = [{"type": "photo", "url": url} for url in DANGEROUS_URLS] + [
                {"type": payload, "url": "https://cdn.test/x.jpg"}]
            ticket.review_reason = payload if ticket.status == TicketStatus.REVIEW else None
            session.add(TicketMessage(ticket_id=ticket.id, external_id=f"extra-{ticket.id}", kind="comment",
                                      text=payload, occurred_at=ticket.opened_at,
                                      attachments=[{"type": "photo", "url": DANGEROUS_URLS[0]}]))
            session.add(AgencyAnswer(ticket_id=ticket.id, agency_code="PLN", action="answer", text=payload,
                                     link_version=1))
            session.add(Reply(key=f"answer:x{ticket.id}", ticket_id=ticket.id, kind="answer", channel="comment_reply",
                              target_id="c", text=payload, status=ReplyStatus.FAILED, error=payload))
            session.add(OutboundMail(key=f"forward:x{ticket.id}", kind="forward", ticket_id=ticket.id,
                                     agency_code="PLN", recipients=[payload], status="failed", error=payload))
            session.add(TicketNote(ticket_id=ticket.id, author="operator:ani", text=payload))
    return db


def test_an_xss_corpus_is_inert_on_every_console_page(client, attacked) -> None:  # type: ignore[no-untyped-def]
    assert len(XSS) >= 50
    make_operator(attacked, "kepala", "kata-sandi-kepala", role="supervisor", name=XSS[0])
    for n, payload in enumerate(XSS[1:], start=1):
        with attacked.scope() as session:
            session.add(Operator(username=f"op{n}", name=payload, role="operator", password_hash="x"))
    with attacked.scope() as session:
        session.execute(update(Agency).where(Agency.code == "DIKES").values(emails=[XSS[2]]))
        session.add(ReplyTemplate(key="ack_public", text=XSS[3]))
    assert login(client, "kepala", "kata-sandi-kepala").status_code == 303
    with attacked.session() as session:
        numbers = list(session.scalars(select(Ticket.number).order_by(Ticket.id)))
    pages = ["/ops/", "/ops/review", "/ops/review?page=2", "/ops/tickets", "/ops/tickets?page=2", "/ops/overdue",
             "/ops/attention/replies", "/ops/attention/mails", "/ops/attention/contacts", "/ops/operators",
             "/ops/contacts", "/ops/contacts/DIKES", "/ops/templates",
             *(f"/ops/tickets/{number}" for number in numbers)]
    pages += [f"/ops/tickets?q={payload}" for payload in XSS[:10]]
    seen_payload_text = 0
    for path in pages:
        page = inert_page(client, path)
        seen_payload_text += page.count("&lt;script&gt;alert(1)&lt;/script&gt;")
    assert seen_payload_text > 0  # the payloads are shown, as text


def test_two_operators_at_once_one_wins_and_the_other_is_told(runtime, db) -> None:  # type: ignore[no-untyped-def]
    seed_agencies_with_contacts(db)
    number = make_ticket(db, 1)
    seen = ticket_of(db, number).updated_at
    outcome: dict[str, object] = {}

    def budi_assigns() -> None:
        try:
            outcome["budi"] = ticket_ops.assign(runtime.pipeline, number, "PLN", actor="operator:budi", seen=seen)
        except DecisionRefused as refused:
            outcome["budi"] = refused

    with claimed(db, number, seen) as (session, ticket):  # Ani's action is under way and holds the ticket
        routing_decisions.mark_not_complaint(session, ticket, actor="operator:ani")
        budi = threading.Thread(target=budi_assigns)
        budi.start()
        time.sleep(0.5)
        assert "budi" not in outcome  # Budi's action waits for Ani's to finish
    budi.join(20)

    assert isinstance(outcome["budi"], TicketChanged)
    assert "baru saja diubah orang lain" in str(outcome["budi"])
    ticket = ticket_of(db, number)
    assert ticket.status == TicketStatus.NOT_COMPLAINT and ticket.agency_code is None
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(OutboundMail)) == 0
        assert list(session.scalars(select(RoutingDecision.actor))) == ["operator:ani"]


def test_many_operators_racing_on_one_ticket_leave_one_decision(runtime, db) -> None:  # type: ignore[no-untyped-def]
    seed_agencies_with_contacts(db)
    number = make_ticket(db, 1)
    make_ticket(db, 2)
    seen = ticket_of(db, number).updated_at
    actions = [
        lambda: ticket_ops.not_complaint(runtime.pipeline, number, actor="operator:a", seen=seen),
        lambda: ticket_ops.close(runtime.pipeline, number, actor="operator:b", seen=seen),
        lambda: ticket_merge.merge(runtime.pipeline, number, "NTB-2026-000002", actor="operator:c", seen=seen),
        lambda: ticket_ops.not_complaint(runtime.pipeline, number, actor="operator:d", seen=seen),
    ]
    barrier = threading.Barrier(len(actions))
    results: list[object] = []

    def run(action: Any) -> None:
        barrier.wait()
        try:
            results.append(action())
        except DecisionRefused as refused:
            results.append(refused)

    threads = [threading.Thread(target=run, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    winners = [r for r in results if isinstance(r, ticket_ops.Done)]
    assert len(results) == 4 and len(winners) == 1
    assert all(isinstance(r, TicketChanged) for r in results if r not in winners)
    ticket = ticket_of(db, number)
    expected = {"ditandai bukan pengaduan": TicketStatus.NOT_COMPLAINT, "ditutup": TicketStatus.CLOSED,
                "digabung": TicketStatus.MERGED}
    [status] = [s for words, s in expected.items() if words in winners[0].message]  # type: ignore[attr-defined]
    assert ticket.status == status
    assert (ticket.merged_into_id is not None) == (status == TicketStatus.MERGED)


def test_the_xss_corpus_is_inert_on_the_deliveries_login_reports_and_front_pages(app, attacked) -> None:  # type: ignore[no-untyped-def]
    from ntbcare.core.models import Delivery, DeliveryStatus

    with attacked.scope() as session:
        for n, payload in enumerate(XSS):
            session.add(Delivery(body=payload.encode(), body_sha256=f"{n:064d}", status=DeliveryStatus.FAILED,
                                 error=payload, note=payload))
            session.add(OutboundMail(key=f"recap:{n}{payload}", kind="recap", recipients=[payload], status="failed",
                                     attempts=1, error=payload))
    client = app.test_client()
    assert login(client, "ani", "kata-sandi-ani-1").status_code == 303
    signed_out = app.test_client()
    pages = [(client, "/ops/attention/deliveries"), (client, "/ops/reports"), (signed_out, "/"),
             *((signed_out, f"/?q={payload}") for payload in XSS[:10])]
    shown = [inert_page(who, path) for who, path in pages]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown[0] and "&lt;script&gt;alert(1)&lt;/script&gt;" in shown[1]

    from tests.ops_helpers import csrf_token

    echoed = 0
    for payload in XSS:  # the login form shows the username typed back (401, then 429 once throttled)
        response = signed_out.post("/ops/login", data={"csrf_token": csrf_token(signed_out), "username": payload,
                                                       "password": "salah-sandinya"})
        assert response.status_code in (401, 429), payload
        page = response.get_data(as_text=True)
        assert inert(page) == [], (payload, inert(page)[:5])
        shown = payload.strip()[:64]
        if any(ch in shown for ch in "<>\"'"):
            assert shown not in page, payload
        echoed += 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in page
    assert echoed >= 1


def test_two_operators_in_two_browsers_one_wins_and_the_other_is_told(app, db) -> None:  # type: ignore[no-untyped-def]
    """Ani and Budi both have the review queue open and act on the same ticket at the same moment."""
    import re

    from tests.ops_helpers import CSRF_FIELD

    seed_agencies_with_contacts(db)
    make_operator(db, "ani", "kata-sandi-ani-1", name="Ani")
    make_operator(db, "budi", "kata-sandi-budi-1", name="Budi")
    number = make_ticket(db, 1)
    ani, budi = app.test_client(), app.test_client()
    forms = {}
    for who, name in ((ani, "ani"), (budi, "budi")):
        assert login(who, name, f"kata-sandi-{name}-1").status_code == 303
        page = who.get("/ops/review").get_data(as_text=True)
        item = page[page.index(f'id="t-{number}"'):]
        forms[name] = {"csrf_token": CSRF_FIELD.search(page).group(1), "next": "/ops/review",
                       "seen": re.search(r'name="seen" value="([^"]+)"', item).group(1)}
    barrier = threading.Barrier(2)
    pages: dict[str, str] = {}

    def act(who: Any, name: str, action: str, **fields: str) -> None:
        barrier.wait()
        response = who.post(f"/ops/tickets/{number}/{action}", data={**forms[name], **fields})
        assert response.status_code == 303
        pages[name] = who.get(response.headers["Location"]).get_data(as_text=True)

    threads = [threading.Thread(target=act, args=(ani, "ani", "assign"), kwargs={"agency": "PLN"}),
               threading.Thread(target=act, args=(budi, "budi", "not-complaint"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    told = [name for name, page in pages.items() if "baru saja diubah orang lain" in page]
    won = [name for name, page in pages.items() if "diteruskan ke" in page or "ditandai bukan pengaduan" in page]
    assert len(told) == 1 and len(won) == 1 and set(told + won) == {"ani", "budi"}, pages.keys()
    ticket = ticket_of(db, number)
    if won == ["ani"]:  # routed to PLN; its forward e-mail waits in the outbox (no SMTP_URL here)
        assert ticket.status == TicketStatus.ROUTED and ticket.agency_code == "PLN"
    else:
        assert ticket.status == TicketStatus.NOT_COMPLAINT and ticket.agency_code is None
    with db.session() as session:
        assert list(session.scalars(select(RoutingDecision.actor))) == [f"operator:{won[0]}"]
