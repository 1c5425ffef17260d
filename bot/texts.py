"""What the bot says to citizens, in Bahasa Indonesia: default wording plus operator-edited templates.

Operators edit a template by storing a ``ReplyTemplate`` row under the same key; a row with unknown or broken
placeholders falls back to the default, so a typo in the console never stops replies from going out.
"""

from __future__ import annotations

import logging
import string
from typing import Any

from sqlalchemy.orm import Session

from ntbcare.core.models import ReplyTemplate, TicketStatus

log = logging.getLogger(__name__)

DEFAULT_TEMPLATES: dict[str, str] = {
    "ack_public": (
        "Terima kasih, laporan Anda sudah kami terima dengan nomor {number}. "
        "Kami teruskan ke instansi terkait dan kabar selanjutnya kami sampaikan di sini."
    ),
    "ack_private": (
        "Terima kasih sudah melapor ke NTB Care. Laporan Anda tercatat dengan nomor {number}. "
        "Ketik nomor tersebut di sini kapan saja untuk melihat statusnya."
    ),
    "ack_private_hidden": (
        "Terima kasih sudah melapor ke NTB Care. Laporan Anda tercatat dengan nomor {number}. "
        "Komentar Anda kami sembunyikan dari publik karena memuat data pribadi (NIK, nomor telepon atau "
        "e-mail); isinya tetap kami terima lengkap. Silakan lanjutkan percakapan di sini."
    ),
    "ack_messenger": (
        "Terima kasih, laporan Anda tercatat dengan nomor {number}. Kami teruskan ke instansi terkait. "
        "Ketik nomor tersebut kapan saja untuk melihat statusnya."
    ),
    "answer_public": "Tanggapan {agency} atas laporan {number}:\n{answer}",
    "answer_messenger": "Tanggapan {agency} atas laporan Anda {number}:\n{answer}",
    "status": "Status laporan {number}: {status}.",
    "status_with_answer": "Status laporan {number}: {status}.\nTanggapan terakhir dari {agency}:\n{answer}",
    "status_not_found": (
        "Mohon maaf, nomor laporan {number} tidak ditemukan. Periksa kembali nomornya "
        "(contoh: NTB-2026-000123) atau ceritakan keluhan Anda di sini."
    ),
    "status_no_number": "Laporan terakhir Anda bernomor {number}. Status: {status}.",
    "status_none": (
        "Belum ada laporan atas nama Anda di NTB Care. Ceritakan keluhan Anda di sini, "
        "kami catat dan kami teruskan ke instansi terkait."
    ),
    "rating_prompt": (
        "Apakah tanggapan atas laporan {number} sudah menyelesaikan masalah Anda? Pilih salah satu di bawah."
    ),
    "reopened": (
        "Laporan {number} kami buka kembali dan kami teruskan lagi ke instansi terkait. "
        "Terima kasih sudah memberi tahu kami."
    ),
}

STATUS_LABELS: dict[str, str] = {
    TicketStatus.NEW: "baru diterima",
    TicketStatus.REVIEW: "sedang diperiksa petugas",
    TicketStatus.ROUTED: "sedang diteruskan ke instansi terkait",
    TicketStatus.FORWARDED: "sudah diteruskan ke instansi terkait dan menunggu tanggapan",
    TicketStatus.ANSWERED: "sudah ditanggapi instansi terkait",
    TicketStatus.CLOSED: "selesai",
    TicketStatus.WITHDRAWN: "ditarik oleh pelapor",
    TicketStatus.NOT_COMPLAINT: "tidak dicatat sebagai pengaduan",
}


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


def template_placeholders(template: str) -> set[str]:
    """The ``{names}`` a template uses; raises ValueError on a malformed template."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def render(session: Session, key: str, **values: Any) -> str:
    """The text for ``key``, from the operator's template when there is a usable one, else the default."""
    return fill(key, template_text(session, key), **values)


def template_text(session: Session, key: str) -> str | None:
    """The operator's template for ``key``, if one is stored (one lookup; a batch reuses it with :func:`fill`)."""
    row = session.get(ReplyTemplate, key)
    return row.text if row is not None else None


def fill(key: str, template: str | None, **values: Any) -> str:
    """``template`` (the operator's, may be None) filled in when usable, else ``key``'s default wording."""
    if template is not None and template.strip():
        try:
            if template_placeholders(template) <= set(values):
                return template.format(**values).strip()
            log.warning("reply template %r uses unknown placeholders; using the default", key)
        except (ValueError, IndexError, KeyError, AttributeError):
            log.warning("reply template %r is malformed; using the default", key)
    return DEFAULT_TEMPLATES[key].format(**values).strip()
