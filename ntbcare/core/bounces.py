"""Bounces: which of our e-mails a returned message is about, and what went wrong.

Every e-mail we send has its own envelope sender (VERP): ``bounces+<outbound_mail id>.<signature>@domain``
(``BOUNCE_ADDRESS``, or ``bounces@`` the domain of ``MAIL_FROM``), which becomes its ``Return-Path``; a mail
system that cannot deliver it writes back to exactly that address, so the address alone says which mail
bounced. The signature is an HMAC of the id under a key derived from ``SECRET_KEY``: a forged bounce, made
up by someone who knows a mail id, names an address whose signature does not verify, and marks nothing.
The same signed id is also in the header ``X-NTBCare-Mail``, for bounces that quote the original headers but
reach us some other way.

:func:`read_report` understands RFC 3464 delivery status notifications (``multipart/report``) and the common
non-standard bounces (Exim, qmail, Exchange's and Postfix's plain texts) that only quote the original headers.
Pure functions: the caller records what they find (:mod:`routing.bounces`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr

from ntbcare.core.settings import Settings

MAIL_HEADER = "X-NTBCare-Mail"
SIGNATURE_CHARS = 16  # hex: 64 bits, so a forger must guess 2^64 signatures per mail
_CONTEXT = b"ntbcare bounce address v1"
_SIGNED = re.compile(r"^(\d{1,18})\.([0-9a-f]{16})$")
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_SMTP_REPLY = re.compile(r"\b([45]\d\d)[ -](?:[245]\.\d{1,3}\.\d{1,3}\s+)?\S")
_ADDRESS = re.compile(r"<?([A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})>?")
FAILURE_WORDS = re.compile(
    r"could not be delivered|couldn't be delivered|undeliverable|undelivered mail|delivery has failed|"
    r"delivery to the following recipients? failed|permanent(ly)? (error|failure|fatal)|failed permanently|"
    r"address\(es\) failed|wasn't able to deliver|was not delivered|user unknown|no such user|"
    r"mailbox (unavailable|not found|full)|recipient address rejected|does not exist|"
    r"tidak dapat dikirim|gagal terkirim|tidak terkirim", re.IGNORECASE)
# Where a plain-text bounce starts quoting the original message (Exim, qmail, Sendmail, forwarded copies).
QUOTE_MARK = re.compile(r"^\s*-{2,}\s*(?:this is a copy|below this line is a copy|original message|"
                        r"begin forwarded message)", re.IGNORECASE | re.MULTILINE)
DELAY_WORDS = re.compile(r"warning message only|delivery (has been )?delayed|will (continue|retry|keep) "
                         r"(trying|to try)|not yet been delivered|delivery status notification \(delay\)",
                         re.IGNORECASE)


def _key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode("utf-8"), _CONTEXT, hashlib.sha256).digest()


def signature(settings: Settings, mail_id: int) -> str:
    return hmac.new(_key(settings.secret_key), str(mail_id).encode(), hashlib.sha256).hexdigest()[:SIGNATURE_CHARS]


def signed_id(settings: Settings, mail_id: int) -> str:
    """``<id>.<signature>``: what the bounce address and the ``X-NTBCare-Mail`` header carry."""
    return f"{mail_id}.{signature(settings, mail_id)}"


def base_address(settings: Settings) -> tuple[str, str]:
    """The bounce address's local part and domain (``BOUNCE_ADDRESS``, else ``bounces@`` MAIL_FROM's domain)."""
    address = settings.bounce_address or "bounces@" + (parseaddr(settings.mail_from)[1].rpartition("@")[2]
                                                       or "localhost")
    local, _, domain = address.rpartition("@")
    return local, domain.lower()


def bounce_address(settings: Settings, mail_id: int) -> str:
    """The envelope sender (Return-Path) of outbound mail ``mail_id``."""
    local, domain = base_address(settings)
    return f"{local}+{signed_id(settings, mail_id)}@{domain}"


def stamp(settings: Settings, message: EmailMessage, mail_id: int) -> str:
    """Mark ``message`` as outbound mail ``mail_id`` (header ``X-NTBCare-Mail``); returns the envelope sender
    to send it with, so that its bounces name it."""
    del message[MAIL_HEADER]
    message[MAIL_HEADER] = signed_id(settings, mail_id)
    return bounce_address(settings, mail_id)


@dataclass(frozen=True)
class Identified:
    """Which mail an address or header names: ``mail_id`` when its signature verifies; ``forged`` when it is
    ours in form but the signature is wrong (nothing may be marked)."""

    mail_id: int | None = None
    forged: bool = False


def verify_signed(settings: Settings, value: str) -> Identified:
    match = _SIGNED.match(value.strip().lower())
    if match is None:
        return Identified()
    mail_id = int(match.group(1))
    if hmac.compare_digest(match.group(2), signature(settings, mail_id)):
        return Identified(mail_id)
    return Identified(forged=True)


def identify_address(settings: Settings, address: str) -> Identified:
    """``bounces+<id>.<signature>@domain`` → the mail id, if the address is ours and the signature verifies."""
    local, domain = base_address(settings)
    given_local, _, given_domain = parseaddr(address)[1].strip().rpartition("@")
    prefix = local.lower() + "+"
    if given_domain.lower() != domain or not given_local.lower().startswith(prefix):
        return Identified()
    return verify_signed(settings, given_local[len(prefix):])


@dataclass(frozen=True)
class Failure:
    """One recipient the report says could not be reached."""

    recipient: str  # "" when the report does not say
    status: str  # e.g. "5.1.1", or ""
    diagnostic: str  # the remote server's words, or the report's


@dataclass
class Report:
    """What a returned message says. ``verdict``: ``failed`` (a bounce), ``delayed`` (still being tried),
    ``delivered``/``relayed`` (a success notice), or ``other`` (an auto-reply, anything else)."""

    verdict: str
    failures: list[Failure] = field(default_factory=list)
    original_recipients: list[str] = field(default_factory=list)  # a DSN's Original-Recipient, when it differs
    signed_ids: list[str] = field(default_factory=list)  # X-NTBCare-Mail values quoted from the original
    envelope_recipients: list[str] = field(default_factory=list)  # Delivered-To, X-Original-To, To

    def diagnostic(self) -> str:
        lines = []
        for failure in self.failures:
            parts = [p for p in (failure.recipient, failure.status, failure.diagnostic) if p]
            lines.append(": ".join(parts))
        return "; ".join(dict.fromkeys(lines))[:2000] or "dikembalikan tanpa keterangan"


def _one_line(value: object) -> str:
    return " ".join(str(value or "").split())


def _address_of(field_value: str) -> str:
    """``rfc822; user@example.com`` → ``user@example.com``."""
    value = field_value.split(";", 1)[-1].strip()
    return parseaddr(value)[1] or value.strip("<>")


def _delivery_status(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    text = payload if isinstance(payload, str) else ""
    return [message_from_bytes(block.encode("utf-8", "replace"), policy=policy.compat32)
            for block in re.split(r"\r?\n\s*\r?\n", text.strip()) if block.strip()]


def _quoted_headers(message: Message) -> list[Message]:
    """The original message's headers, wherever the report quotes them."""
    found: list[Message] = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            found.extend(p for p in (part.get_payload() or []) if isinstance(p, Message))
        elif kind == "text/rfc822-headers":
            raw = part.get_payload(decode=True) or b""
            found.append(message_from_bytes(raw if isinstance(raw, bytes) else str(raw).encode(),
                                            policy=policy.compat32))
    return found


def _plain_text(message: Message) -> str:
    texts = []
    for part in message.walk():
        if part.get_content_type() == "text/plain" and not part.get_filename():
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                texts.append(raw.decode(part.get_content_charset() or "utf-8", "replace"))
    return "\n".join(texts)


def _from_dsn(message: Message, report: Report) -> None:
    """RFC 3464: one block per recipient with Action, Final-Recipient, Status and Diagnostic-Code."""
    actions = []
    for part in message.walk():
        if part.get_content_type() not in ("message/delivery-status", "message/global-delivery-status"):
            continue
        for block in _delivery_status(part):
            action = _one_line(block.get("Action")).lower()
            if not action:
                continue
            actions.append(action)
            if action == "failed":
                recipient = _address_of(_one_line(block.get("Final-Recipient") or block.get("Original-Recipient")))
                original = _address_of(_one_line(block.get("Original-Recipient")))
                if original and original.lower() != recipient.lower():
                    report.original_recipients.append(original)
                report.failures.append(Failure(recipient, _one_line(block.get("Status")),
                                               _one_line(block.get("Diagnostic-Code"))[:500]))
    if report.failures:
        report.verdict = "failed"
    elif actions:
        report.verdict = "delayed" if "delayed" in actions else actions[0]


def _from_text(text: str, report: Report) -> None:
    """A bounce without a delivery-status part: its words say whether it failed; the lines with an SMTP reply
    code or enhanced status say why, and the addresses near them to whom."""
    head = QUOTE_MARK.split(text, 1)[0][:20_000]
    if DELAY_WORDS.search(head) and not re.search(r"permanent|gave up|given up", head, re.IGNORECASE):
        report.verdict = "delayed"
        return
    if not FAILURE_WORDS.search(head):
        return
    report.verdict = "failed"
    lines = [line.strip() for line in head.splitlines()]
    seen: set[str] = set()
    for index, line in enumerate(lines):
        if not (_SMTP_REPLY.search(line) or _STATUS.search(line)) or _one_line(line) in seen:
            continue
        seen.add(_one_line(line))
        nearby = " ".join(lines[max(0, index - 3):index + 1])
        addresses = _ADDRESS.findall(nearby)
        status = _STATUS.search(line)
        report.failures.append(Failure(addresses[-1] if addresses else "", status.group(1) if status else "",
                                       _one_line(line)[:500]))
    if not report.failures:
        addresses = [a for a in _ADDRESS.findall(head) if not a.lower().startswith(("mailer-daemon", "postmaster"))]
        summary = next((_one_line(line) for line in lines if FAILURE_WORDS.search(line)), "")
        report.failures.append(Failure(addresses[0] if addresses else "", "", summary[:500]))


def read_report(raw: bytes) -> Report:
    """Read a returned message (what the mail system hands the bounce address)."""
    message = message_from_bytes(raw, policy=policy.compat32)
    report = Report("other")
    report.envelope_recipients = [address for name in ("X-Original-To", "Delivered-To", "To", "Envelope-To")
                                  for _n, address in getaddresses(message.get_all(name) or []) if address]
    for original in _quoted_headers(message):  # its To: lists every recipient, not the ones that failed
        report.signed_ids.extend(_one_line(v) for v in original.get_all(MAIL_HEADER) or [])
    _from_dsn(message, report)
    if report.verdict == "other":  # no delivery-status part: read the words (an auto-reply has none of these)
        text = _plain_text(message)
        report.signed_ids.extend(m for m in re.findall(rf"{MAIL_HEADER}:\s*(\S+)", text, re.IGNORECASE))
        _from_text(text, report)
    return report

