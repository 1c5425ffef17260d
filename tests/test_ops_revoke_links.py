"""The console's "revoke links" action on a ticket page: every agency link e-mailed so far stops opening the
ticket (410), optionally a fresh link goes to the agency's contacts at once, and it is audited as the operator;
on SQLite and PostgreSQL, through the same forms the browser posts."""

from __future__ import annotations

import email
import email.policy
import re
from typing import Any

from ntbcare.core.models import TicketStatus
from ntbcare.pipeline.ticket_claim import version_of
from tests.ops_helpers import csrf_token
from tests.ops_tickets_seed import make_ticket, ticket_of
from tests.test_ops_tickets import act, audit_actions, mailbox, seeded

__all__ = ["mailbox", "seeded"]  # the fixtures, shared with the console's ticket tests


def links_in(handler: Any) -> list[str]:
    """The agency link of every e-mail received so far, in order."""
    found = []
    for _, raw in handler.received:
        text = email.message_from_bytes(raw, policy=email.policy.default).get_body(("plain",)).get_content()
        [link] = set(re.findall(r"https?://\S+?(/a/[A-Za-z0-9._~-]+)", text))
        found.append(link)
    return found


def test_revoking_voids_every_earlier_link_and_mails_a_new_one(mailbox, seeded) -> None:  # type: ignore[no-untyped-def]
    number = make_ticket(seeded, 1, status=TicketStatus.FORWARDED, agency="PLN")
    act(mailbox, seeded, number, "resend-link")
    [leaked] = links_in(mailbox.handler)
    stranger = mailbox.application.test_client()  # whoever got hold of the forwarded e-mail
    assert stranger.get(leaked).status_code == 200
    page = mailbox.get(f"/ops/tickets/{number}").get_data(as_text=True)
    assert "Cabut tautan lama &amp; kirim yang baru" in page and "Cabut semua tautan instansi" in page

    page = act(mailbox, seeded, number, "revoke-links", resend="1")

    assert "kini tidak berlaku" in page and "dikirim ulang ke" in page
    _, fresh = links_in(mailbox.handler)
    assert fresh != leaked
    assert stranger.get(leaked).status_code == 410
    assert stranger.get(fresh).status_code == 200
    ticket = ticket_of(seeded, number)
    assert (ticket.status, ticket.agency_code, ticket.link_version) == (TicketStatus.FORWARDED, "PLN", 2)
    assert ("links_revoked", "operator:ani") in audit_actions(seeded, number)


def test_revoking_without_a_new_link_sends_nothing(mailbox, seeded) -> None:  # type: ignore[no-untyped-def]
    number = make_ticket(seeded, 2, status=TicketStatus.FORWARDED, agency="PLN")
    act(mailbox, seeded, number, "resend-link")
    [leaked] = links_in(mailbox.handler)

    page = act(mailbox, seeded, number, "revoke-links")

    assert "kini tidak berlaku" in page and "dikirim ulang" not in page
    assert len(mailbox.handler.received) == 1
    assert mailbox.application.test_client().get(leaked).status_code == 410
    assert ticket_of(seeded, number).link_version == 2


def test_a_stale_page_cannot_revoke(mailbox, seeded) -> None:  # type: ignore[no-untyped-def]
    number = make_ticket(seeded, 3, status=TicketStatus.FORWARDED, agency="PLN")

    stale = version_of(ticket_of(seeded, number))
    act(mailbox, seeded, number, "close")  # a colleague closed it meanwhile
    response = mailbox.post(f"/ops/tickets/{number}/revoke-links", data={
        "csrf_token": csrf_token(mailbox, "/ops/review"), "seen": stale}, follow_redirects=True)
    assert "baru saja diubah orang lain" in response.get_data(as_text=True)
    assert ticket_of(seeded, number).link_version == 1
