"""E-mails to the operators about the service itself (not about a ticket): the webhook watchdog's alert."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate

from sqlalchemy.orm import Session

from ntbcare.core.display import format_wita
from ntbcare.core.mail_transport import MailPermanentError
from ntbcare.core.models import Delivery, OutboundMail
from ntbcare.core.settings import Settings

SILENCE_KEY_PREFIX = "watchdog:silence:"


def build_silence_email(session: Session, settings: Settings, mail: OutboundMail, now: datetime) -> EmailMessage:
    """"No webhook since ...": what it means and what to check, in Indonesian (the operators' language)."""
    if not mail.key.startswith(SILENCE_KEY_PREFIX):
        raise MailPermanentError(f"watchdog mail {mail.key!r} names no delivery")
    delivery = session.get(Delivery, int(mail.key.removeprefix(SILENCE_KEY_PREFIX)))
    since = format_wita(delivery.received_at) if delivery is not None else "tidak diketahui"
    message = EmailMessage()
    message["Subject"] = f"[NTB Care] Tidak ada kiriman webhook dari Facebook sejak {since}"
    message["From"] = settings.mail_from
    message["To"] = ", ".join(mail.recipients)
    message["Date"] = formatdate(localtime=False)
    if mail.message_id:
        message["Message-ID"] = mail.message_id
    message.set_content(
        "Yth. operator NTB Care,\n\n"
        f"Sejak {since} tidak ada satu pun kiriman webhook dari Facebook, padahal sudah lewat "
        f"{settings.webhook_silence_minutes} menit pada jam aktif (06.00-22.00 WITA).\n\n"
        "Facebook menghentikan langganan webhook halaman tanpa pemberitahuan bila webhook kita gagal terus. "
        "Mohon periksa:\n"
        "  1. jalankan `ntbcare facebook check` di server: token halaman, izin, dan langganan webhook;\n"
        "  2. dasbor aplikasi Facebook > Webhooks: apakah langganan halaman masih aktif;\n"
        f"  3. {settings.public_base_url}/readyz dan log layanan.\n\n"
        "Pesan ini dikirim sekali untuk setiap jeda; bila kiriman kembali masuk, tidak perlu tindakan.\n"
    )
    return message
