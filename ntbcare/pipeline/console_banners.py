"""What stops the service from doing its work, said on every console page with what to do about it: the Page
token was refused, replies cannot be sent, Facebook has sent no webhook for ``WEBHOOK_SILENCE_MINUTES`` of
daytime (the watchdog's measure, :func:`ntbcare.pipeline.watchdog.webhook_silence`), or no webhook ever
arrived (a fresh install whose webhook is not registered yet: no Facebook complaint can come in until it is)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from bot.outbox import page_token_paused
from ntbcare.core.display import format_short_wita
from ntbcare.core.models import utcnow
from ntbcare.core.settings import Settings
from ntbcare.pipeline.watchdog import webhook_silence


@dataclass(frozen=True)
class Banner:
    key: str
    message: str


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
    silence = webhook_silence(session, now, settings)  # the watchdog's measure: daytime minutes only
    if silence.last_delivery_at is None:  # replays do not count: only Facebook's own deliveries prove the link
        found.append(Banner("no_webhook", "Belum ada webhook diterima dari Facebook, jadi pengaduan dari Facebook "
                            "belum dapat masuk. Daftarkan webhook di Meta for Developers (URL callback "
                            f"{settings.public_base_url}/webhook, token verifikasi FB_VERIFY_TOKEN), langgankan "
                            "halaman pada field feed dan messages, lalu jalankan `ntbcare facebook check`."))
    elif silence.silent:
        since = format_short_wita(silence.last_delivery_at)
        found.append(Banner("silence", f"Tidak ada webhook dari Facebook sejak {since}. "
                            "Facebook mungkin menghentikan langganan webhook: jalankan `ntbcare facebook check`, "
                            "periksa langganan aplikasi di Meta for Developers dan apakah server dapat dijangkau "
                            "dari internet."))
    return found
