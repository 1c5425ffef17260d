"""A hand-computed month (December 2026) of tickets for the public figures, and a corpus of personal data
that must never appear in any public byte. Times are WITA; the expected figures are worked out in comments
on the real working calendar (Mon-Fri 08:00-16:00; 24 Dec cuti bersama, 25 Dec Christmas)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from ntbcare.core.db import Database
from ntbcare.core.models import (
    Agency,
    AgencyAnswer,
    AuditEntry,
    Citizen,
    Rating,
    Ticket,
    TicketMessage,
    TicketStatus,
)
from ntbcare.pipeline.join import deadline_policy_for
from routing.deadlines import deadline_for

WITA = ZoneInfo("Asia/Makassar")
NOW = datetime(2026, 12, 30, 12, 0, tzinfo=WITA)

# Personal data planted in citizens, tickets and answers: none of it may be published.
NAME = "Baiq Nurhayati Sasmita"
NIK = "5201140101900001"
NIK_SPACED = "5201 1401 0190 0001"
PHONE = "0812-3456-7890"
PHONE_INTL = "+62 813 1122 3344"
EMAIL = "baiq.nurhayati@gmail.com"
FB_USER = "100012345678901"
PSID = "6543210987654321"
PROFILE = "https://www.facebook.com/baiq.nurhayati.sasmita"
PERMALINK = "https://www.facebook.com/ntbcare/posts/pfbid0ABCDEFsecret"
COMMENT_ID = "987654321_123456789012345"
PHOTO = "https://scontent.xx.fbcdn.net/v/t39/foto-ktp-baiq.jpg"
WITHDRAWN_TEXT = "RAHASIA-DITARIK jalan rusak depan rumah saya"
NOT_COMPLAINT_TEXT = "RAHASIA-BUKAN-PENGADUAN selamat pagi admin"
HIDDEN_TEXT = "RAHASIA-DISEMBUNYIKAN NIK saya ada di sini"
CORPUS = (NAME, "Nurhayati", "Sasmita", NIK, NIK_SPACED, PHONE, "81234567890", PHONE_INTL, "81311223344", EMAIL,
          FB_USER, PSID, PROFILE, "baiq.nurhayati.sasmita", PERMALINK, "pfbid0ABCDEFsecret", COMMENT_ID, PHOTO,
          "foto-ktp-baiq", "RAHASIA-DITARIK", "RAHASIA-BUKAN-PENGADUAN", "RAHASIA-DISEMBUNYIKAN")
PERSONAL_TEXT = (f"Saya {NAME}, NIK {NIK} ({NIK_SPACED}), HP {PHONE} / {PHONE_INTL}, e-mail {EMAIL}. "
                 f"Lihat profil saya {PROFILE} dan foto {PHOTO}. Jalan di Desa Sesela berlubang besar, "
                 f"sudah tiga motor jatuh. @Baiq.Nurhayati")


def at(day: int, hour: int, minute: int = 0, month: int = 12) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=WITA)


def seed_month(db: Database, settings) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The December fixture (see test_public_figures for the expected figures); returns ticket ids by label."""
    policy = deadline_policy_for(settings)
    ids: dict[str, int] = {}
    with db.scope() as s:
        s.add_all([
            Agency(code="DINKES", name="Dinas Kesehatan", kind="opd", emails=["dinkes@ntbprov.test"],
                   data={"head_emails": ["kadis@dinkes.test"]}),
            Agency(code="PUPR", name="Dinas Pekerjaan Umum dan Penataan Ruang", kind="opd",
                   emails=["pupr@ntbprov.test"]),
            Agency(code="DISHUB", name="Dinas Perhubungan", kind="opd", emails=["dishub@ntbprov.test"]),
        ])
        citizen = Citizen(fb_user_id=FB_USER, psid=PSID, display_name=NAME)
        s.add(citizen)
        s.flush()
        counter = iter(range(1, 100))

        def ticket(label: str, agency: str | None, opened: datetime, status: str, *, tier: str = "normal",
                   text: str = "Jalan berlubang di Sesela, mohon diperbaiki.") -> Ticket:
            n = next(counter)
            t = Ticket(number=f"NTB-2026-{n:06d}", status=status, channel="comment", text=text,
                       attachments=[{"type": "image", "url": PHOTO}], agency_code=agency, citizen_id=citizen.id,
                       origin_id=f"{COMMENT_ID}-{n}", post_id="987654321", comment_id=f"{COMMENT_ID}-{n}",
                       permalink=PERMALINK, tier=tier, opened_at=opened, urgent=tier == "urgent",
                       deadline_at=deadline_for(tier, opened, policy),
                       classification={"location_detail": {"desa": {"name": "Sesela"},
                                                           "kabkota": {"name": "Lombok Barat"}}})
            s.add(t)
            s.flush()
            ids[label] = t.id
            return t

        def log(t: Ticket, when: datetime, action: str, actor: str = "system", **detail: str) -> None:
            s.add(AuditEntry(ticket_id=t.id, at=when, actor=actor, action=action, detail=detail))

        def routed(t: Ticket, when: datetime, agency: str) -> None:
            log(t, when, "routed", agency=agency)

        def answered(t: Ticket, when: datetime, agency: str, text: str, actor: str | None = None) -> None:
            s.add(AgencyAnswer(ticket_id=t.id, agency_code=agency, action="answer", text=text, link_version=1,
                               created_at=when))
            log(t, when, "agency_answer", actor or f"agency:{agency}")

        # T1 normal, Fri 4 Dec 15:00 → Mon 7 Dec 09:30: 1 h + 1.5 h = 2.5 working hours; within 48 h.
        t1 = ticket("T1", "DINKES", at(4, 15), TicketStatus.ANSWERED, text=PERSONAL_TEXT)
        routed(t1, at(4, 15, 1), "DINKES")
        answered(t1, at(7, 9, 30), "DINKES", f"Sudah kami cek, Ibu {NAME}. Hubungi petugas kami di {PHONE} "
                                             f"atau {EMAIL}. Jalan ditambal minggu ini.")
        # T2 important, Wed 23 Dec 14:00 → Mon 28 Dec 10:00: 2 h + (24, 25 Dec off, weekend) + 2 h = 4 h;
        # deadline 24 working hours = Wed 30 Dec 14:00, so within.
        t2 = ticket("T2", "DINKES", at(23, 14), TicketStatus.ANSWERED, tier="important")
        routed(t2, at(23, 14, 2), "DINKES")
        answered(t2, at(28, 10), "DINKES", "Puskesmas Gunungsari sudah menerima obatnya.")
        # T3 normal, Tue 1 Dec 08:00 → Tue 15 Dec 08:00: ten working days = 80 h; late (48 h).
        t3 = ticket("T3", "DINKES", at(1, 8), TicketStatus.ANSWERED)
        routed(t3, at(1, 8, 5), "DINKES")
        answered(t3, at(15, 8), "DINKES", "Ambulans desa sudah diperbaiki.", actor="agency:DINKES:kadis@dinkes.test")
        # T4 urgent (wall clock), Wed 2 Dec 20:00 → 22:30 = 2.5 h; deadline 1 h, late.
        t4 = ticket("T4", "DINKES", at(2, 20), TicketStatus.ANSWERED, tier="urgent")
        routed(t4, at(2, 20, 1), "DINKES")
        answered(t4, at(2, 22, 30), "DINKES", "Tim gawat darurat sudah tiba.")
        # T5 normal, Wed 9 Dec 09:00, no answer: backlog, overdue since Thu 17 Dec 09:00.
        t5 = ticket("T5", "DINKES", at(9, 9), TicketStatus.FORWARDED)
        routed(t5, at(9, 9, 1), "DINKES")
        # T6 normal, Thu 10 Dec 10:00 to PUPR, which bounces it at 11:00; DINKES from 13:00 answers Fri 11 Dec
        # 10:00: 6 h + 2 h = 8 h from when the citizen wrote; within.
        t6 = ticket("T6", "DINKES", at(10, 10), TicketStatus.ANSWERED)
        routed(t6, at(10, 10, 1), "PUPR")
        log(t6, at(10, 11), "review", "agency:PUPR", reason="not_ours", agency="PUPR")
        routed(t6, at(10, 13), "DINKES")
        answered(t6, at(11, 10), "DINKES", "Posyandu Sesela buka lagi mulai Senin.")
        # T7 routed in November: not in December's figures, though answered in December.
        t7 = ticket("T7", "DINKES", at(20, 9, month=11), TicketStatus.ANSWERED)
        routed(t7, at(20, 9, 1, month=11), "DINKES")
        answered(t7, at(1, 9), "DINKES", "Sudah ditangani.")
        # T8 routed to PUPR, then withdrawn by the citizen: received by PUPR, never shown.
        t8 = ticket("T8", "PUPR", at(3, 9), TicketStatus.WITHDRAWN, text=WITHDRAWN_TEXT)
        routed(t8, at(3, 9, 1), "PUPR")
        log(t8, at(3, 10), "withdrawn", "citizen")
        # T9 not a complaint: never routed, never shown, counted as withheld.
        ticket("T9", None, at(5, 9), TicketStatus.NOT_COMPLAINT, text=NOT_COMPLAINT_TEXT)
        # T10 routed to PUPR, its comment hidden for personal data: backlog (overdue), never shown.
        t10 = ticket("T10", "PUPR", at(8, 9), TicketStatus.FORWARDED, text=HIDDEN_TEXT)
        routed(t10, at(8, 9, 1), "PUPR")
        log(t10, at(8, 9, 2), "comment_hidden", "bot")
        s.add(TicketMessage(ticket_id=t10.id, external_id=f"{COMMENT_ID}-hidden", kind="comment", text=HIDDEN_TEXT,
                            occurred_at=at(8, 9), hidden=True))
        # Ratings: DINKES two "puas" and one "kurang puas" in December, one "puas" in November (not counted).
        for value, when in (("puas", at(8, 10)), ("puas", at(29, 10)), ("kurang_puas", at(16, 10)),
                            ("puas", at(25, 10, month=11))):
            s.add(Rating(ticket_id=t1.id, agency_code="DINKES", value=value, created_at=when))
    return ids
