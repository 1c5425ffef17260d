"""Status questions in Messenger: a citizen typed a ticket number or tapped the status button.

They are recognised while events are applied, so the bot can answer with the ticket's status; a message
that is only a status question does not join the citizen's open ticket as complaint text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.events import NormalizedEvent

# "NTB-2026-000123", also typed as "ntb 2026 123" or "#NTB-2026-000123".
TICKET_NUMBER = re.compile(r"\bNTB[\s-]?(20\d\d)[\s-]?(\d{1,6})\b", re.IGNORECASE)
STATUS_PAYLOAD = "STATUS"
# More words than this besides the number make the message a complaint text that mentions its ticket.
MAX_OTHER_WORDS = 4


@dataclass(frozen=True)
class StatusRequest:
    """A citizen asked in Messenger how a ticket is doing (typed its number, or tapped the status button)."""

    psid: str
    number: str | None
    mid: str


def status_request_of(ev: NormalizedEvent) -> StatusRequest | None:
    """A Messenger message that is a status question: a ticket number with at most a few other words,
    or the STATUS quick reply / postback (payload ``STATUS`` or ``STATUS:<number>``)."""
    if ev.source != "messenger" or not ev.author_id:
        return None
    payload = (ev.payload or "").strip().upper()
    if payload == STATUS_PAYLOAD or payload.startswith(STATUS_PAYLOAD + ":"):
        number = payload.split(":", 1)[1] if ":" in payload else None
        return StatusRequest(ev.author_id, number, ev.external_id)
    match = TICKET_NUMBER.search(ev.text or "")
    if match is None:
        return None
    number = f"NTB-{match.group(1)}-{int(match.group(2)):06d}"
    return StatusRequest(ev.author_id, number, ev.external_id)


def only_asks_status(ev: NormalizedEvent) -> bool:
    """True when the text is the ticket number and a few words around it, nothing to add to the ticket."""
    rest = TICKET_NUMBER.sub(" ", ev.text or "")
    return len(re.findall(r"\w{2,}", rest)) <= MAX_OTHER_WORDS
