"""What supervisors change in the console besides accounts: the agencies' contact addresses and the bot's
templates. Each change is checked here (addresses, placeholders) and audited as ``operator:<username>``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.texts import DEFAULT_TEMPLATES, template_placeholders
from ntbcare.core.models import Agency, AuditEntry, ReplyTemplate

EMAIL = re.compile(r"^[^@\s,;<>\"']+@[a-z0-9-]+(\.[a-z0-9-]+)+$")
MAX_ADDRESSES = 20
MAX_TEMPLATE_CHARS = 2000


class AdminError(ValueError):
    """A change that cannot be made; the message (Bahasa Indonesia) says why."""


class Conflict(AdminError):
    """Someone else changed the same thing since the page was opened."""


def parse_addresses(raw: str) -> list[str]:
    """One address per line (or separated by commas); lowercased, without duplicates, each checked."""
    addresses = [part.strip().lower() for part in re.split(r"[\s,;]+", raw) if part.strip()]
    bad = [address for address in addresses if len(address) > 254 or not EMAIL.match(address)]
    if bad:
        raise AdminError(f"Alamat e-mail tidak sah: {', '.join(bad[:5])}.")
    unique = list(dict.fromkeys(addresses))
    if len(unique) > MAX_ADDRESSES:
        raise AdminError(f"Paling banyak {MAX_ADDRESSES} alamat.")
    return unique


def active_agencies(session: Session) -> list[Agency]:
    return list(session.scalars(select(Agency).where(Agency.active.is_(True)).order_by(Agency.name)))


def head_emails(agency: Agency) -> list[str]:
    return list((agency.data or {}).get("head_emails") or [])


def version_of(agency: Agency) -> str:
    return agency.updated_at.isoformat() if agency.updated_at else ""


def set_contacts(session: Session, code: str, *, emails: str, heads: str, version: str, actor: str) -> Agency:
    """Replace an agency's contact and head addresses (as ``agencies import`` would); refuses when the agency
    changed since ``version`` was read."""
    agency = session.get(Agency, code, with_for_update=True)
    if agency is None:
        raise AdminError("Instansi tidak ditemukan.")
    if version != version_of(agency):
        raise Conflict("Kontak instansi ini baru saja diubah orang lain. Periksa isinya, lalu simpan lagi.")
    new_emails, new_heads = parse_addresses(emails), parse_addresses(heads)
    before = {"emails": list(agency.emails), "head_emails": head_emails(agency)}
    agency.emails = new_emails
    agency.data = {**(agency.data or {}), "emails": new_emails, "head_emails": new_heads}
    session.add(AuditEntry(ticket_id=None, actor=actor, action="agency_contacts_set",
                           detail={"agency": code, "before": before,
                                   "after": {"emails": new_emails, "head_emails": new_heads}}))
    return agency


@dataclass(frozen=True)
class TemplateRow:
    key: str
    text: str
    default: str
    edited: bool
    updated_by: str | None
    placeholders: list[str]


def templates(session: Session) -> list[TemplateRow]:
    rows = []
    for key, default in DEFAULT_TEMPLATES.items():
        edited = session.get(ReplyTemplate, key)
        rows.append(TemplateRow(key=key, text=edited.text if edited else default, default=default,
                                edited=edited is not None, updated_by=edited.updated_by if edited else None,
                                placeholders=sorted(template_placeholders(default))))
    return rows


def check_template(key: str, text: str) -> None:
    """The CLI's check (``ntbcare templates set``): only the default's placeholders, and a valid template."""
    if key not in DEFAULT_TEMPLATES:
        raise AdminError("Templat tidak dikenal.")
    if not text.strip():
        raise AdminError("Teks templat tidak boleh kosong; gunakan Kembalikan ke bawaan.")
    if len(text) > MAX_TEMPLATE_CHARS:
        raise AdminError(f"Teks templat paling panjang {MAX_TEMPLATE_CHARS} karakter.")
    try:
        unknown = template_placeholders(text) - template_placeholders(DEFAULT_TEMPLATES[key])
    except ValueError:
        raise AdminError("Teks templat tidak sah: periksa tanda kurung kurawal { }.") from None
    if unknown:
        allowed = ", ".join("{" + p + "}" for p in sorted(template_placeholders(DEFAULT_TEMPLATES[key]))) or "tidak ada"
        raise AdminError(f"Penanda tidak dikenal: {', '.join('{' + u + '}' for u in sorted(unknown))}. "
                         f"Penanda yang boleh: {allowed}.")


def set_template(session: Session, key: str, text: str, *, actor: str) -> None:
    check_template(key, text)
    row = session.get(ReplyTemplate, key) or ReplyTemplate(key=key)
    row.text, row.updated_by = text, actor[:64]
    session.add(row)
    session.add(AuditEntry(ticket_id=None, actor=actor, action="template_set", detail={"key": key, "text": text}))


def reset_template(session: Session, key: str, *, actor: str) -> None:
    if key not in DEFAULT_TEMPLATES:
        raise AdminError("Templat tidak dikenal.")
    row = session.get(ReplyTemplate, key)
    if row is not None:
        session.delete(row)
    session.add(AuditEntry(ticket_id=None, actor=actor, action="template_reset", detail={"key": key}))
