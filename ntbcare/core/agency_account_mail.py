"""E-mails to an agency's contacts that are about its inbox rather than one ticket: the weekly digest of
open tickets and the single-use sign-in link. Rendered like every agency e-mail (plain text and HTML,
Indonesian, autoescaped) by :func:`ntbcare.core.agency_mail.compose`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from ntbcare.core.agency_mail import compose
from ntbcare.core.display import format_duration, format_wita


@dataclass(frozen=True)
class DigestRow:
    """One open ticket in the weekly digest; no citizen identity, the first words of the complaint only."""

    number: str
    received_at: datetime
    deadline: datetime | None
    location: str | None
    first_words: str


def _row_context(row: DigestRow, now: datetime) -> dict[str, object]:
    overdue = row.deadline is not None and row.deadline <= now
    if row.deadline is None:
        clock = "tanpa batas waktu"
    elif overdue:
        clock = f"lewat batas {format_duration(now - row.deadline)}"
    else:
        clock = f"sisa {format_duration(row.deadline - now)}"
    return {"number": row.number, "received": format_wita(row.received_at), "clock": clock, "overdue": overdue,
            "location": row.location or "Tidak disebutkan", "first_words": " ".join(row.first_words.split())}


def build_digest_email(*, agency_name: str, agency_code: str, rows: list[DigestRow], sign_in_url: str,
                       week: str, now: datetime, mail_from: str, to: list[str],
                       message_id: str | None = None) -> EmailMessage:
    """Monday's list of the agency's open tickets, overdue first, with where to sign in to its inbox."""
    items = [_row_context(row, now) for row in rows]
    overdue = sum(1 for item in items if item["overdue"])
    context: dict[str, object] = {"agency_name": " ".join(agency_name.split()), "rows": items, "count": len(items),
                                  "overdue": overdue, "sign_in_url": sign_in_url, "week": week, "number": week}
    subject = (f"[NTB Care] Ringkasan mingguan {agency_name}: {len(items)} laporan terbuka"
               + (f", {overdue} lewat batas" if overdue else ""))
    return compose("digest", subject, context, number=f"digest-{agency_code}-{week}", mail_from=mail_from, to=to,
                   message_id=message_id)


def build_sign_in_email(*, agency_names: list[str], link: str, expires_at: datetime, mail_from: str,
                        to: list[str]) -> EmailMessage:
    """The single-use link that opens the agency inbox; it says how long it works and that it works once."""
    context: dict[str, object] = {"agency_names": agency_names, "link": link, "expires": format_wita(expires_at),
                                  "number": "masuk"}
    return compose("sign_in", "[NTB Care] Tautan masuk kotak laporan instansi", context, number="sign-in",
                   mail_from=mail_from, to=to, message_id=None)
