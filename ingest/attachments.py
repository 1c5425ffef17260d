"""The photos and files a citizen sent, owed for download in the transaction that stores their message.

Facebook's attachment URLs expire within days, so the intent to keep each file is a ``ticket_media`` row
written with the message: a crash after the commit loses nothing, and the downloader
(:mod:`ntbcare.pipeline.media`) fetches it once its ticket is a complaint. Shared links, locations and
templates are no files and owe nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from ntbcare.core.media_rules import downloadable
from ntbcare.core.models import MediaFile, MediaStatus, TicketMessage


def owe_downloads(session: Session, messages: Iterable[TicketMessage]) -> list[MediaFile]:
    """One pending row per file attachment of each new message (its ticket set), in attachment order."""
    owed = []
    for message in messages:
        for position, attachment in enumerate(message.attachments or []):
            url = downloadable(attachment)
            if url is None:
                continue
            media = MediaFile(ticket=message.ticket, message=message, position=position,
                              kind=str(attachment["type"]), source_url=url, status=MediaStatus.PENDING, attempts=0)
            session.add(media)
            owed.append(media)
    return owed
