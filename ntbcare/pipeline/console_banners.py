"""What stops the service from doing its work, said on every console page with what to do about it: the Page
token was refused, replies cannot be sent, or Facebook has sent no webhook for a long time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.outbox import page_token_paused
from ntbcare.core.models import Delivery, utcnow
from ntbcare.core.settings import Settings


@dataclass(frozen=True)
class Banner:
    key: str
    message: str


def newest_delivery_at(session: Session) -> datetime | None:
    """When the newest webhook body arrived (by id: the primary key, so no scan of the inbox)."""
    newest = session.scalar(select(func.max(Delivery.id)))
    if newest is None:
        return None
    return session.scalar(select(Delivery.received_at).where(Delivery.id == newest))


def banners(session: Session, settings: Settings, *, now: datetime | None = None) -> list[Banner]:
    """The service-wide problems an operator must know of, most serious first."""
    now = now or utcnow()
    found: list[Banner] = []
    if page_token_paused(session):
        found.append(Banner("page_token", "Token Halaman Facebook ditolak: pengiriman balasan dihentikan. "
                            "Ganti FB_PAGE_ACCESS_TOKEN dengan token baru, mulai ulang layanan, lalu jalankan "
                            "`ntbcare replies resume`."))
    elif not settings.fb_page_access_token:
        found.append(Banner("no_token", "Pengiriman balasan dijeda: FB_PAGE_ACCESS_TOKEN belum diatur. "
                            "Isi token Halaman di konfigurasi, lalu mulai ulang layanan."))
    newest = newest_delivery_at(session)
    silence = timedelta(minutes=settings.webhook_silence_minutes)
    if newest is not None and now - newest > silence:
        hours = int((now - newest).total_seconds() // 3600)
        found.append(Banner("silence", f"Tidak ada webhook dari Facebook selama {hours} jam atau lebih. "
                            "Periksa langganan webhook aplikasi di Meta for Developers dan apakah server "
                            "dapat dijangkau dari internet; `ntbcare deliveries` menunjukkan kiriman terakhir."))
    return found
