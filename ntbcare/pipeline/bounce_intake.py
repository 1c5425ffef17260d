"""Taking in one returned message (``ntbcare mail bounce``, fed by the mail system's pipe): which of our mails
it names (the VERP address it was delivered to, else the signed ``X-NTBCare-Mail`` header it quotes), whether it
is a failure, and recording it (:mod:`routing.bounces`).

Anything that is not a verified failure of one of our mails changes nothing and says why: a delay warning, an
auto-reply or other chatter sent to the bounce address, an address or header of ours whose signature does not
verify (a forged bounce), a mail id we never sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ntbcare.core.bounces import Identified, identify_address, read_report, verify_signed
from ntbcare.core.db import Database
from ntbcare.core.settings import Settings
from routing.bounces import record_bounce

MAX_BYTES = 10 * 1024 * 1024  # a report quoting a large original is cut: the headers come first


@dataclass(frozen=True)
class Intake:
    """``outcome``: ``bounced``, ``already``, ``delayed``, ``not_a_bounce``, ``not_ours``, ``forged`` or
    ``unknown_mail``; ``message`` says it in one line."""

    outcome: str
    message: str
    mail_id: int | None = None
    kind: str = ""
    ticket: str | None = None
    back_in_review: bool = False
    diagnostic: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"outcome": self.outcome, "message": self.message, "mail_id": self.mail_id, "kind": self.kind,
                "ticket": self.ticket, "back_in_review": self.back_in_review, "diagnostic": self.diagnostic}


def identify(settings: Settings, envelope: Sequence[str], headers: Sequence[str],
             signed: Sequence[str]) -> Identified:
    """The first of our addresses (the envelope recipient first, then the report's own headers) or quoted
    signed ids that verifies; ``forged`` when only unverifiable ones of ours were found."""
    forged = False
    candidates = [identify_address(settings, a) for a in (*envelope, *headers) if a]
    candidates += [verify_signed(settings, value) for value in signed if value]
    for candidate in candidates:
        if candidate.mail_id is not None:
            return candidate
        forged = forged or candidate.forged
    return Identified(forged=forged)


def take_bounce(db: Database, settings: Settings, raw: bytes, *, envelope: Sequence[str] = ()) -> Intake:
    """Read ``raw`` (as delivered to the bounce address; ``envelope``: the address it was delivered to, from
    the mail system) and record it if it is a verified failure of one of our mails."""
    report = read_report(raw[:MAX_BYTES])
    found = identify(settings, envelope, report.envelope_recipients, report.signed_ids)
    if found.mail_id is None:
        if found.forged:
            return Intake("forged", "refused: the bounce address or X-NTBCare-Mail signature does not verify; "
                                    "nothing marked")
        return Intake("not_ours", "ignored: not addressed to one of our bounce addresses")
    if report.verdict == "delayed":
        return Intake("delayed", f"ignored: mail {found.mail_id} is delayed, still being tried", found.mail_id)
    if report.verdict != "failed":
        return Intake("not_a_bounce", f"ignored: no delivery failure in this message (about mail {found.mail_id})",
                      found.mail_id)
    diagnostic = report.diagnostic()
    recorded = record_bounce(db, found.mail_id, report.failures, diagnostic=diagnostic,
                             original_recipients=report.original_recipients)
    if recorded.outcome == "unknown_mail":
        return Intake("unknown_mail", f"ignored: no outbound mail {found.mail_id}", found.mail_id)
    if recorded.outcome == "already":
        return Intake("already", f"mail {found.mail_id} was already marked bounced for "
                                 f"{', '.join(recorded.bounced_to)}", found.mail_id, recorded.kind, recorded.ticket,
                      diagnostic=diagnostic)
    then = f"; ticket {recorded.ticket} is back in review (forward_bounced)" if recorded.back_in_review else ""
    return Intake("bounced", f"mail {found.mail_id} ({recorded.kind}) bounced: {diagnostic}{then}", found.mail_id,
                  recorded.kind, recorded.ticket, recorded.back_in_review, diagnostic)
