"""Kept attachments as the pages of operators and agencies show them, and the check behind ``/media/<token>``.

A page asks for the attachments of the tickets it shows: each kept file becomes a fresh signed link
(:mod:`ntbcare.core.media_links`) for that page's reader, anything not kept yet its state in words (the page
then still offers Facebook's own link). Serving checks the token, then the database: the file is kept, belongs
to the ticket the token names (or to one merged into it), and an agency still holds that ticket at the link
version the token carries. Whatever fails, the caller answers the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ntbcare.core.media_links import OPS, make_media_token, media_path, read_media_token
from ntbcare.core.media_rules import download_name, inline
from ntbcare.core.media_store import MediaStore
from ntbcare.core.models import MediaFile, MediaStatus, Ticket
from ntbcare.core.settings import Settings

NOTES = {MediaStatus.PENDING: "belum diunduh", MediaStatus.DOWNLOADING: "sedang diunduh",
         MediaStatus.REFUSED: "tidak diunduh", MediaStatus.FAILED: "gagal diunduh"}


@dataclass(frozen=True)
class MediaLink:
    """What a page shows for one attachment URL: our signed link once kept, else a note (and why, for operators)."""

    href: str | None
    note: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Servable:
    """A kept file that a valid link may download, with how to serve it."""

    path: Path
    content_type: str
    filename: str
    inline: bool


def page_media(session: Session, settings: Settings, tickets: Sequence[Ticket],
               audience: str = OPS) -> dict[int, dict[str, MediaLink]]:
    """Per ticket shown, its attachments (and those of tickets merged into it) by Facebook URL.

    ``audience`` is ``ops`` or the agency code the page is for; an agency's links carry each ticket's current
    link version, so reassigning or revoking the ticket's links ends them too.
    """
    by_id = {ticket.id: ticket for ticket in tickets}
    if not by_id:
        return {}
    merged = dict(session.execute(select(Ticket.id, Ticket.merged_into_id)
                                  .where(Ticket.merged_into_id.in_(list(by_id)))).all()) if audience == OPS else {}
    rows = session.scalars(select(MediaFile).where(or_(MediaFile.ticket_id.in_(list(by_id)),
                                                       MediaFile.ticket_id.in_(list(merged))))
                           .order_by(MediaFile.id))
    shown: dict[int, dict[str, MediaLink]] = {ticket_id: {} for ticket_id in by_id}
    for media in rows:
        page = by_id.get(media.ticket_id) or by_id.get(merged.get(media.ticket_id) or 0)
        if page is None:
            continue
        links = shown[page.id]
        if media.status == MediaStatus.STORED:
            version = 0 if audience == OPS else page.link_version
            token = make_media_token(settings.secret_key, media.id, page.id, audience, version)
            links[media.source_url] = MediaLink(media_path(token))
        elif media.source_url not in links:
            links[media.source_url] = MediaLink(None, NOTES.get(media.status, media.status),
                                                media.reason or "")
    return shown


def servable(session: Session, settings: Settings, token: str, now: datetime) -> Servable | None:
    """The file a ``/media/<token>`` link may download now, or None (one answer for every refusal)."""
    claims = read_media_token(settings.secret_key, token, now=now)
    if claims is None:
        return None
    media = session.get(MediaFile, claims.media_id)
    if media is None or media.status != MediaStatus.STORED or not media.content_type:
        return None
    owner = session.get(Ticket, media.ticket_id)
    page = session.get(Ticket, claims.ticket_id)
    if owner is None or page is None or claims.ticket_id not in (owner.id, owner.merged_into_id):
        return None
    if claims.audience != OPS and (page.agency_code != claims.audience or page.link_version != claims.link_version
                                   or owner.id != page.id):
        return None
    path = MediaStore(settings.media_dir).path(media.stored_path)
    if path is None:
        return None
    return Servable(path, media.content_type, download_name(page.number, media.id, media.content_type),
                    inline(media.content_type))
