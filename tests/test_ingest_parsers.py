"""Every wire-shaped fixture through the public entry point, with the outcome a user would see."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ingest.envelope import parse_delivery
from ingest.events import Attachment, NormalizedEvent, UnsupportedItem
from ingest.feed import FEED_PARSERS, feed_event_key
from ingest.messenger import MESSAGING_PARSERS, messaging_event_key

FIXTURES = Path(__file__).parent / "fixtures"
PAGE = "104000000000001"
CITIZEN = "6543210987654321"
POST1 = f"{PAGE}_555000000000111"
COMMENT1 = "555000000000111_888000000000001"
CDN = "https://scontent.xx.fbcdn.net/v"
VIDEO_CDN = "https://video.xx.fbcdn.net/v"


def at(*parts: int, ms: int = 0) -> datetime:
    return datetime(*parts, microsecond=ms * 1000, tzinfo=UTC)


def event(kind: str, dedup_key: str, external_id: str, occurred_at: datetime, **fields: Any) -> dict[str, Any]:
    """An expectation row; text, attachments, is_from_page and payload are always checked."""
    defaults = {"text": None, "attachments": (), "is_from_page": False, "payload": None, "page_id": PAGE}
    return {"kind": kind, "dedup_key": dedup_key, "external_id": external_id, "occurred_at": occurred_at,
            **defaults, **fields}


def comment(kind: str, comment_id: str, occurred_at: datetime, suffix: str = "", **fields: Any) -> dict[str, Any]:
    fields = {"post_id": POST1, "parent_id": POST1, **fields}
    return event(kind, f"feed:{kind}:{comment_id}{suffix}", comment_id, occurred_at, **fields)


def post(kind: str, object_id: str, occurred_at: datetime, suffix: str = "", **fields: Any) -> dict[str, Any]:
    post_id = f"{PAGE}_{object_id}"
    fields = {"post_id": post_id, "parent_id": None, **fields}
    return event(kind, f"feed:{kind}:{post_id}{suffix}", post_id, occurred_at, **fields)


def message(kind: str, mid: str, occurred_at: datetime, **fields: Any) -> dict[str, Any]:
    fields = {"author_id": CITIZEN, "post_id": None, **fields}
    return event(kind, f"messenger:{kind}:{mid}", mid, occurred_at, **fields)


def receipt(kind: str, watermark: int, occurred_at: datetime) -> dict[str, Any]:
    key = f"{CITIZEN}:{watermark}"
    return event(kind, f"messenger:{kind}:{key}", key, occurred_at, author_id=CITIZEN)


def unsupported(source: str, shape: str, reason: str, key_hex: str) -> dict[str, Any]:
    return {"source": source, "shape": shape, "reason": reason, "dedup_key": f"unsupported:{key_hex}",
            "page_id": PAGE}


# What the service handles: comments (with replies, edits, removals and moderation) and posts on the page
# (text, photo, video), and Messenger messages, echoes, button taps, receipts and reactions.
SUPPORTED_FEED = {("comment", verb) for verb in ("add", "edited", "remove", "hide", "unhide")} | {
    (item, verb) for item in ("status", "photo", "video", "post") for verb in ("add", "edited", "remove")}
SUPPORTED_MESSAGING = {"message", "message_edit", "echo", "postback", "read", "delivery", "reaction"}

SPAM_TEXT = "Pulsa murah kuota 50GB cuma 20rb!! cek bio"
VISITOR = {"author_id": "7300000000000101", "author_name": "Made Wirawan"}
PAGE_AUTHOR = {"author_id": PAGE, "author_name": "NTB Care", "is_from_page": True}
REACTION_REASON = "reaction events are not complaints"

EXPECTED: dict[str, list[dict[str, Any]]] = {
    "feed__comment__add": [comment(
        "comment.add", COMMENT1, at(2025, 12, 31, 23, 59, 58), author_id="7300000000000042",
        author_name="Baiq Nurul", text="Jalan di Desa Sembalun rusak parah, mohon ditindaklanjuti",
        permalink="https://www.facebook.com/ntbcare/posts/pfbid0abc")],
    "feed__comment__reply": [comment(
        "comment.add", "555000000000111_888000000000002", at(2026, 1, 1, 0, 1, 39),
        parent_id=COMMENT1, text="Betul, sudah 3 bulan begini", author_name="Lalu Ahmad")],
    "feed__comment__edited": [comment(
        "comment.edited", COMMENT1, at(2026, 1, 1, 0, 6, 39), ":65b5224e363832eb",
        text="Jalan di Desa Sembalun (dekat SDN 2) rusak parah")],
    "feed__comment__edit_verb": [comment(
        "comment.edited", COMMENT1, at(2026, 1, 1, 0, 15), ":63f9dc0193b11146",
        text="Jalan di Desa Sembalun (dekat SDN 2) rusak parah, sudah 2 kali ada motor jatuh")],
    "feed__comment__remove": [comment(
        "comment.remove", COMMENT1, at(2026, 1, 1, 0, 8, 19), author_id="7300000000000042", author_name=None)],
    "feed__comment__hide": [comment(
        "comment.hide", "555000000000111_888000000000003", at(2026, 1, 1, 0, 23, 20), ":40f677b6ef8e8130",
        text=SPAM_TEXT)],
    "feed__comment__unhide": [comment(
        "comment.unhide", "555000000000111_888000000000003", at(2026, 1, 1, 0, 23, 20), ":83c9be1e52b030ac",
        text=SPAM_TEXT)],
    "feed__comment__add__from_page": [comment(
        "comment.add", "555000000000111_888000000000009", at(2026, 1, 1, 0, 56, 39), parent_id=COMMENT1,
        text="Terima kasih, laporan diteruskan ke Dinas PUPR NTB (tiket #NTB-2026-000124).", **PAGE_AUTHOR)],
    "feed__comment__add__photo": [comment(
        "comment.add", "555000000000111_888000000000004", at(2026, 1, 1, 0, 58, 18),
        attachments=(Attachment("photo", f"{CDN}/t39.30808-6/471234567_comment_n.jpg?stp=dst-jpg_s720x720"
                                "&_nc_cat=105"),))],
    # The second comment of the photo's author a minute later: the words that join the photo's ticket.
    "feed__comment__add__after_photo": [comment(
        "comment.add", "555000000000111_888000000000006", at(2026, 1, 1, 0, 59, 18), author_name="Lalu Ahmad",
        text="Jembatan gantung di Dusun Lendang Bajur papannya lapuk, kemarin ada anak sekolah jatuh",
        permalink="https://www.facebook.com/ntbcare/posts/pfbid0abc")],
    # A reply under the page's answer, as Facebook delivers it: flattened under the citizen's own comment.
    "feed__comment__reply__under_answer": [comment(
        "comment.add", "555000000000111_888000000000007", at(2026, 1, 2), parent_id=COMMENT1,
        author_id="7300000000000042", author_name="Baiq Nurul", text="belum diperbaiki pak, masih gelap")],
    "feed__comment__add__video": [comment(
        "comment.add", "555000000000111_888000000000005", at(2026, 1, 1, 0, 59, 58),
        text="Lihat sendiri kondisinya pak",
        attachments=(Attachment("video", f"{VIDEO_CDN}/t42.9040-2/10000000_comment_video_n.mp4?_nc_cat=101"),))],
    "feed__comment__add__malformed": [unsupported(
        "feed", "feed:comment.add:malformed", "missing or invalid comment_id",
        "14580e0284a34cc5033f28f62e1e2d3a4bfa8ec0aaca9676e771f48d68148766")],
    "feed__status__add": [post(
        "post.add", "555000000000333", at(2026, 1, 1, 1, 13, 18),
        text="Lampu jalan di Jl. Udayana Mataram mati sejak seminggu", **VISITOR)],
    "feed__status__add__photos": [post(
        "post.add", "555000000000555", at(2026, 1, 1, 1, 14, 58), author_name="Ni Luh Sari",
        text="Banjir lagi di Kelurahan Dasan Agung, air masuk rumah warga. Drainase mampet",
        attachments=(Attachment("photo", f"{CDN}/t39.30808-6/480001_flood1_n.jpg?_nc_cat=104"),
                     Attachment("photo", f"{CDN}/t39.30808-6/480002_flood2_n.jpg?_nc_cat=104")))],
    "feed__status__edited": [post(
        "post.edited", "555000000000333", at(2026, 1, 1, 1, 21, 38), ":d782770a8dafb1c0",
        text="Lampu jalan di Jl. Udayana Mataram (depan kantor pos) mati sejak seminggu", **VISITOR)],
    "feed__status__remove": [post("post.remove", "555000000000333", at(2026, 1, 1, 1, 23, 19), author_name=None)],
    "feed__photo__add": [post(
        "post.add", "555000000000444", at(2026, 1, 1, 1, 29, 58), text="Sampah menumpuk di pinggir pantai Ampenan",
        attachments=(Attachment("photo", f"{CDN}/t39.30808-6/photo_n.jpg?stp=dst-jpg"),), **VISITOR)],
    "feed__photo__edited": [post(
        "post.edited", "555000000000444", at(2026, 1, 1, 1, 34, 58), ":3d19bd367e063b29",
        text="Sampah menumpuk di pinggir pantai Ampenan, sudah bau. Tolong DLH angkut",
        attachments=(Attachment("photo", f"{CDN}/t39.30808-6/photo_n.jpg?stp=dst-jpg"),))],
    "feed__photo__remove": [post("post.remove", "555000000000777", at(2026, 1, 1, 1, 36, 39))],
    "feed__video__add": [post(
        "post.add", "555000000000888", at(2026, 1, 1, 1, 49, 58), author_name="Hj. Aminah",
        text="Jembatan gantung di Desa Lenek ambles, bahaya buat anak sekolah",
        attachments=(Attachment("video", f"{VIDEO_CDN}/t42.1790-2/520000_bridge_n.mp4?_nc_cat=108"),))],
    "feed__video__edited": [post(
        "post.edited", "555000000000888", at(2026, 1, 1, 1, 51, 38), ":4e370cfdf69c331a",
        text="Jembatan gantung di Desa Lenek, Lombok Timur ambles, bahaya buat anak sekolah",
        attachments=(Attachment("video", f"{VIDEO_CDN}/t42.1790-2/520000_bridge_n.mp4?_nc_cat=108"),))],
    "feed__video__remove": [post("post.remove", "555000000000888", at(2026, 1, 1, 1, 53, 19), attachments=())],
    "feed__post__add": [post(
        "post.add", "555000000000999", at(2026, 1, 1, 1, 54, 58),
        text="Layanan pengaduan NTB Care buka 24 jam. Kirim laporan lewat komentar atau Messenger.", **PAGE_AUTHOR)],
    "feed__post__edited": [post(
        "post.edited", "555000000000999", at(2026, 1, 1, 1, 56, 38), ":a19c04e1e9466c5d",
        text="Layanan pengaduan NTB Care buka 24 jam. Kirim laporan lewat komentar, Messenger, atau datang ke "
        "kantor Diskominfotik NTB.", **PAGE_AUTHOR)],
    "feed__post__remove": [post(
        "post.remove", "555000000000444", at(2026, 1, 1, 1, 46, 39), author_id="7300000000000101")],
    "feed__reaction__add": [unsupported(
        "feed", "feed:reaction.add", REACTION_REASON,
        "94dec30f9ce04e0679db2a55773ee40d6ec56b24106dd482cc36558357cc5851")],
    "messaging__message__text": [message(
        "message", "m_Q1w2E3r4T5y6", at(2026, 1, 1, 4, 0, 0, ms=1), text="Saya mau lapor pungli di kantor desa")],
    "messaging__message__attachments": [message(
        "message", "m_Z9x8C7v6B5n4", at(2026, 1, 1, 4, 1, 40, ms=1),
        text="Ini fotonya pak, di depan Puskesmas Narmada",
        attachments=(Attachment("image", f"{CDN}/t1.15752-9/img.jpg?_nc_cat=1"),
                     Attachment("video", f"{VIDEO_CDN}/t42.3356-2/clip.mp4?_nc_cat=2"),
                     Attachment("fallback", "https://l.facebook.com/l.php?u=https%3A%2F%2Fmaps.app.goo.gl%2Fx",
                                "Jalan Rusak Narmada")))],
    "messaging__message__quick_reply": [message(
        "message", "m_Qr1S2t3U4", at(2026, 1, 1, 4, 5, 0, ms=1), text="Infrastruktur", payload="CAT_INFRA")],
    "messaging__message__sticker": [message(
        "message", "m_St1k2R3", at(2026, 1, 1, 4, 5, 50, ms=1), attachments=(Attachment(
            "image", f"{CDN}/t39.1997-6/851557_369239266556155_759568595_n.png?_nc_cat=1"),))],
    "messaging__message__string_timestamp": [message(
        "message", "m_Ts1S2t3", at(2026, 1, 1, 4, 10), text="Air PDAM di Pagesangan keruh sekali")],
    "messaging__message__emoji": [message(
        "message", "m_Em0j1S4s4k", at(2026, 1, 1, 12, 20, 0, ms=1), author_id="6543210987650002",
        text="Assalamualaikum 🙏 lampu jalan di Dusun Bagek Nyaka RT 02/RW 05 ndéq man nyala ⚡ sejak 3 malam, "
        "peteng sekali 😭 inaq-inaq takut lewat. Mohon PLN/Dishub cék 🙏🏽")],
    "messaging__message__malformed": [unsupported(
        "messenger", "messenger:message:malformed", "missing or invalid message.mid",
        "c08da684e4221ff7f0211f2fcb90e5f0669b2a3cc43060ec4689b04bdd8e8568")],
    "messaging__message__echo": [message(
        "echo", "m_Ec1H2o3", at(2026, 1, 1, 4, 6, 40, ms=1), author_id=PAGE, is_from_page=True,
        payload="out:7f3c2a", text="Laporan Anda #NTB-2026-000123 sudah diteruskan ke Dinas PUPR.")],
    "messaging__postback": [message(
        "postback", "m_PbK1l2M3", at(2026, 1, 1, 4, 3, 20, ms=1), text="Buat Laporan Baru",
        payload="NEW_COMPLAINT")],
    "messaging__postback__no_mid": [message(
        "postback", "pb_b3a8d0f14c30c215a89f4217d74162e0", at(2026, 1, 1, 4, 4, 10, ms=1),
        text="Cek Status Laporan", payload="CHECK_STATUS")],
    "messaging__delivery": [receipt("delivery", 1767240499000, at(2026, 1, 1, 4, 8, 20, ms=1))],
    "messaging__read": [receipt("read", 1767240509000, at(2026, 1, 1, 4, 8, 30, ms=1))],
    "messaging__receipts": [receipt("delivery", 1767240519000, at(2026, 1, 1, 4, 8, 40, ms=1)),
                            receipt("read", 1767240529000, at(2026, 1, 1, 4, 8, 50, ms=1))],
    "messaging__reaction": [event(
        "reaction", "messenger:reaction:m_Ec1H2o3:react:like:1767260100001", "m_Ec1H2o3",
        at(2026, 1, 1, 9, 35, 0, ms=1), text="👍", payload="react:like", author_id=CITIZEN)],
    "messaging__referral": [unsupported(
        "messenger", "messenger:referral", "referral events are not complaints",
        "6df7a57bcd33ff1255e3d86c8778ce4510989922e41797dbf2075cb1061ab00f")],
    "standby__message": [unsupported(
        "standby", "standby:message", "another app owns this thread (handover protocol); not ours to answer",
        "618d8d1ed31653b29d0d94cdc20c4d9db859ef4ae9b257ad55a36446effb81a9")],
    "batch__mixed_entries": [
        event("comment.add", "feed:comment.add:555000000000666_888000000000777", "555000000000666_888000000000777",
              at(2026, 1, 1, 6, 46, 38), text="Air PDAM mati lagi", post_id=f"{PAGE}_555000000000666"),
        unsupported("feed", "feed:reaction.add", REACTION_REASON,
                    "9d71a1f81f9074b0293c56ccc57527b61253eb010f20504d6cca88bc6828f9d6"),
        message("message", "m_Bt1C2h3", at(2026, 1, 1, 6, 46, 40, ms=400), text="Halo, ada update laporan saya?"),
        receipt("read", 1767250000300, at(2026, 1, 1, 6, 46, 40, ms=450)),
        post("post.add", "555000000001010", at(2026, 1, 1, 6, 46, 40), author_name="Ahmad Fauzi",
             text="Jalan menuju Pantai Pink Jerowaru berlubang besar-besar, tolong diperbaiki sebelum musim hujan"),
    ],
}


# The older payload form (``sender_id``/``sender_name`` instead of ``from``), still sent to pages subscribed on
# older app versions: every feed shape reads the same. Adds and removals keep their keys, so one event in
# either form is stored once; an edit's key hashes its payload.
for _name in [n for n in EXPECTED if n.startswith("feed__") and "malformed" not in n and "reaction" not in n]:
    EXPECTED[f"{_name}__older_form"] = [
        {k: v for k, v in row.items() if k != "dedup_key" or row["kind"].endswith((".add", ".remove"))}
        for row in EXPECTED[_name]]

STRANGER_POST = "100200300400500_600700800900100"
EXPECTED.update({
    # The page's own actions in the older form: never a ticket (is_from_page).
    "feed__photo__add__from_page__older_form": [post(
        "post.add", "555000000000901", at(2026, 1, 1, 2, 3, 18), text="Jadwal layanan keliling NTB Care minggu ini",
        attachments=(Attachment("photo", f"{CDN}/t39.30808-6/poster_n.jpg?_nc_cat=1"),), **PAGE_AUTHOR)],
    "feed__video__add__from_page__older_form": [post(
        "post.add", "555000000000902", at(2026, 1, 1, 2, 4, 58), text="Cara melapor lewat Messenger",
        attachments=(Attachment("video", f"{VIDEO_CDN}/t42.1790-2/tutorial_n.mp4?_nc_cat=2"),), **PAGE_AUTHOR)],
    "feed__comment__edited__from_page__older_form": [comment(
        "comment.edited", "555000000000111_888000000000009", at(2026, 1, 1, 2, 6, 38), ":04fdfccceb89fe7b",
        parent_id=COMMENT1,
        text="Terima kasih, laporan diteruskan ke Dinas PUPR NTB (tiket #NTB-2026-000124). Mohon ditunggu.",
        **PAGE_AUTHOR)],
    # Mentions: the page tagged in a comment or post elsewhere, in both forms.
    "mention__comment__add": [event(
        "mention.add", "feed:mention.add:600700800900100_700800900100200", "600700800900100_700800900100200",
        at(2026, 1, 1, 2, 19, 58), post_id=STRANGER_POST, parent_id=STRANGER_POST, payload="comment",
        author_id="7300000000000202", author_name="Lalu Hendra",
        text="@NTB Care jalan provinsi Praya-Keruak berlubang parah, sudah ada korban jatuh")],
    "mention__comment__add__from": [event(
        "mention.add", "feed:mention.add:600700800900101_700800900100201", "600700800900101_700800900100201",
        at(2026, 1, 1, 2, 21, 38), payload="comment", author_id="7300000000000203", author_name="Baiq Rina",
        text="@NTB Care air PDAM di Kekalik mati tiga hari")],
    "mention__post__add": [event(
        "mention.add", "feed:mention.add:7300000000000204_600700800900102", "7300000000000204_600700800900102",
        at(2026, 1, 1, 2, 23, 18), payload="post", author_id="7300000000000204", author_name="Made Arsana",
        text="Sampah menumpuk di TPS Sweta, tolong @NTB Care", parent_id=None)],
    "mention__post__add__from": [event(
        "mention.add", "feed:mention.add:7300000000000205_600700800900103", "7300000000000205_600700800900103",
        at(2026, 1, 1, 2, 24, 58), payload="status", author_id="7300000000000205", author_name="Hj. Salmah",
        text="Lampu jalan Gerung mati @NTB Care")],
    "mention__post__add__from_page__older_form": [event(
        "mention.add", "feed:mention.add:100200300400500_600700800900104", "100200300400500_600700800900104",
        at(2026, 1, 1, 2, 26, 38), payload="post", text="Terima kasih @Diskominfotik NTB", **PAGE_AUTHOR)],
    # Messenger: edits keep a key per edit, unsent messages are marked, attachments keep what was sent.
    "messaging__message_edit": [event(
        "message.edited", "messenger:message_edit:m_Q1w2E3r4T5y6:1", "m_Q1w2E3r4T5y6",
        at(2026, 1, 1, 4, 16, 40, ms=1), author_id=CITIZEN, text="Saya mau lapor pungli di kantor Desa Lingsar",
        edit_number=1)],
    "messaging__message_edit__second": [event(
        "message.edited", "messenger:message_edit:m_Q1w2E3r4T5y6:2", "m_Q1w2E3r4T5y6",
        at(2026, 1, 1, 4, 17, 30, ms=1), author_id=CITIZEN,
        text="Saya mau lapor pungli di kantor Desa Lingsar, Lombok Barat", edit_number=2)],
    "messaging__message__unsent": [event(
        "message.unsent", "messenger:message_unsent:m_Q1w2E3r4T5y6", "m_Q1w2E3r4T5y6",
        at(2026, 1, 1, 4, 18, 20, ms=1), author_id=CITIZEN)],
    "messaging__message__location": [message(
        "message", "m_Lc1A2b3", at(2026, 1, 1, 4, 20, 0, ms=1), attachments=(Attachment(
            "location", "https://l.facebook.com/l.php?u=https%3A%2F%2Fwww.bing.com%2Fmaps%2F%3Flvl%3D16",
            "Lokasi Terkini", -8.583069, 116.116608),))],
    "messaging__message__files": [message(
        "message", "m_Fl1A2b3", at(2026, 1, 1, 4, 21, 40, ms=1), attachments=(
            Attachment("file", "https://cdn.fbsbx.com/v/t59.2708-21/surat_keterangan.pdf?_nc_cat=3"),
            Attachment("audio", "https://cdn.fbsbx.com/v/t59.3654-21/audioclip-1767241300.mp4?_nc_cat=4")))],
    "messaging__message__template": [message(
        "message", "m_Tp1A2b3", at(2026, 1, 1, 4, 23, 20, ms=1), attachments=(Attachment(
            "template", "https://berita.example.id/jalan-rusak", "Jalan Rusak Lombok Tengah - Berita NTB"),))],
    "messaging__message__fallback_older": [message(
        "message", "m_Fb1A2b3", at(2026, 1, 1, 4, 25, 0, ms=1), text="ini beritanya", attachments=(Attachment(
            "fallback", "https://l.facebook.com/l.php?u=https%3A%2F%2Fberita.example.id%2Fbanjir", "Banjir Bima"),))],
})


def load(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_bytes())


def fixture_names() -> list[str]:
    return sorted(path.stem for path in FIXTURES.glob("*.json"))


def observed(item: Any, expected: dict[str, Any]) -> dict[str, Any]:
    return {name: getattr(item, name) for name in expected}


def test_every_fixture_file_has_an_expectation_row_and_every_row_a_file() -> None:
    assert set(fixture_names()) == set(EXPECTED)


def fixture_keys() -> tuple[set[tuple[str, str]], set[str]]:
    """The (item, verb) pairs and messaging event names the fixture files carry."""
    feed_keys: set[tuple[str, str]] = set()
    messaging_keys: set[str] = set()
    for name in fixture_names():
        for entry in load(name)["entry"]:
            feed_keys.update(feed_event_key(change["value"]) for change in entry.get("changes", []))
            messaging_keys.update(messaging_event_key(item) for item in entry.get("messaging", []))
    return feed_keys, messaging_keys


def test_every_parser_key_is_exercised_by_a_fixture() -> None:
    feed_keys, messaging_keys = fixture_keys()
    assert set(FEED_PARSERS) - feed_keys == set()
    assert set(MESSAGING_PARSERS) - messaging_keys == set()
    assert SUPPORTED_FEED - feed_keys == set() and SUPPORTED_MESSAGING - messaging_keys == set()


def test_the_parsers_handle_exactly_the_supported_shapes() -> None:
    assert set(FEED_PARSERS) == SUPPORTED_FEED
    assert set(MESSAGING_PARSERS) == SUPPORTED_MESSAGING


def test_fixture_shapes_outside_the_supported_set_become_unsupported_items() -> None:
    feed_keys, messaging_keys = fixture_keys()
    assert feed_keys - SUPPORTED_FEED == {("reaction", "add")}
    assert messaging_keys - SUPPORTED_MESSAGING == {"referral"}
    for name in ("feed__reaction__add", "messaging__referral"):
        assert [type(item) for item in parse_delivery(load(name))] == [UnsupportedItem]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_parses_to_expected_items(name: str) -> None:
    items = parse_delivery(load(name))
    expected = EXPECTED[name]
    assert [observed(item, row) for item, row in zip(items, expected, strict=False)] == expected
    assert len(items) == len(expected)


def test_batch_yields_every_item_of_every_entry_in_wire_order() -> None:
    items = parse_delivery(load("batch__mixed_entries"))
    labels = [item.kind if isinstance(item, NormalizedEvent) else item.shape for item in items]
    assert labels == ["comment.add", "feed:reaction.add", "message", "read", "post.add"]


def test_wire_bytes_with_unicode_escapes_decode_to_the_citizens_text() -> None:
    raw = (FIXTURES / "messaging__message__emoji.json").read_bytes()
    assert raw.isascii() and b"\\ud83d\\ude4f" in raw and b"\\/" in raw
    (item,) = parse_delivery(json.loads(raw))
    assert isinstance(item, NormalizedEvent)
    assert "ndéq man nyala ⚡" in (item.text or "") and "RT 02/RW 05" in (item.text or "")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_redelivery_with_a_new_entry_time_gives_identical_dedup_keys(name: str) -> None:
    first = parse_delivery(load(name))
    redelivered = load(name)
    for entry in redelivered["entry"]:
        entry["time"] += 7
    assert [item.dedup_key for item in parse_delivery(redelivered)] == [item.dedup_key for item in first]


def test_two_different_edits_of_one_comment_get_different_keys_on_the_same_comment() -> None:
    (first,) = parse_delivery(load("feed__comment__edited"))
    (second,) = parse_delivery(load("feed__comment__edit_verb"))
    assert isinstance(first, NormalizedEvent) and isinstance(second, NormalizedEvent)
    assert first.external_id == second.external_id == COMMENT1
    assert first.dedup_key != second.dedup_key


def test_edit_key_ignores_the_order_of_fields_on_the_wire() -> None:
    payload = load("feed__comment__edited")
    value = payload["entry"][0]["changes"][0]["value"]
    payload["entry"][0]["changes"][0]["value"] = dict(reversed(list(value.items())))
    assert parse_delivery(payload)[0].dedup_key == parse_delivery(load("feed__comment__edited"))[0].dedup_key


def test_hide_then_unhide_are_two_occurrences() -> None:
    hide = parse_delivery(load("feed__comment__hide"))[0]
    unhide = parse_delivery(load("feed__comment__unhide"))[0]
    assert hide.dedup_key != unhide.dedup_key


def test_comment_reply_is_a_reply_and_top_level_comment_is_not() -> None:
    (reply,) = parse_delivery(load("feed__comment__reply"))
    (top,) = parse_delivery(load("feed__comment__add"))
    assert isinstance(reply, NormalizedEvent) and isinstance(top, NormalizedEvent)
    assert reply.is_reply and not top.is_reply


def test_all_timestamps_are_timezone_aware_utc() -> None:
    for name in fixture_names():
        for item in parse_delivery(load(name)):
            if isinstance(item, NormalizedEvent):
                assert item.occurred_at.utcoffset() is not None and item.occurred_at.tzinfo == UTC


# Defensive parsing of shapes Facebook documents loosely.


def with_value(**changes: Any) -> dict[str, Any]:
    payload = load("feed__comment__add")
    value = payload["entry"][0]["changes"][0]["value"]
    for key, new in changes.items():
        if new is None:
            value.pop(key, None)
        else:
            value[key] = new
    return payload


def test_numeric_ids_become_strings() -> None:
    payload = with_value(comment_id=555000000000111, post_id=104000000000001, **{"from": {"id": 7300000000000042}})
    (item,) = parse_delivery(payload)
    assert isinstance(item, NormalizedEvent)
    assert (item.external_id, item.post_id, item.author_id) == ("555000000000111", "104000000000001",
                                                                "7300000000000042")


@pytest.mark.parametrize(
    ("created_time", "entry_time", "expected"),
    [
        ("1767225598", 1767225600, at(2025, 12, 31, 23, 59, 58)),
        (1767225598123, 1767225600, at(2025, 12, 31, 23, 59, 58, ms=123)),
        (None, 1767225600, at(2026, 1, 1)),
        ("kemarin", 1767225600123, at(2026, 1, 1, ms=123)),
        (True, "1767225600", at(2026, 1, 1)),
        (0, 1767225600, at(2026, 1, 1)),
    ],
)
def test_timestamp_units_and_fallback_to_entry_time(created_time: Any, entry_time: Any, expected: datetime) -> None:
    payload = with_value(created_time=created_time)
    payload["entry"][0]["time"] = entry_time
    assert parse_delivery(payload)[0].occurred_at == expected


def test_no_usable_time_anywhere_is_malformed_not_invented() -> None:
    payload = with_value(created_time=None)
    del payload["entry"][0]["time"]
    (item,) = parse_delivery(payload)
    assert isinstance(item, UnsupportedItem)
    assert item.shape == "feed:comment.add:malformed" and "created_time" in item.reason


@pytest.mark.parametrize(
    ("payload", "shape"),
    [
        ([1, 2], "delivery:malformed"),
        ("EVENT", "delivery:malformed"),
        ({"object": "instagram", "entry": []}, "delivery:unsupported_object"),
        ({"object": "page"}, "delivery:malformed"),
        ({"object": "page", "entry": ["x"]}, "entry:malformed"),
        ({"object": "page", "entry": [{"time": 1, "messaging": []}]}, "entry:malformed"),
        ({"object": "page", "entry": [{"id": PAGE, "time": 1}]}, "entry:unknown"),
        ({"object": "page", "entry": [{"id": PAGE, "messaging": {"mid": "x"}}]}, "entry:malformed"),
        ({"object": "page", "entry": [{"id": PAGE, "changes": [{"field": "ratings", "value": {}}]}]},
         "change:ratings"),
        ({"object": "page", "entry": [{"id": PAGE, "changes": [{"field": "feed", "value": "x"}]}]},
         "feed:malformed"),
        ({"object": "page", "entry": [{"id": PAGE, "changes": [
            {"field": "feed", "value": {"item": "comment", "verb": "block"}}]}]}, "feed:comment.block"),
        ({"object": "page", "entry": [{"id": PAGE, "time": 1, "messaging": [
            {"sender": {"id": CITIZEN}, "optin": {"ref": "x"}}]}]}, "messenger:optin"),
        ({"object": "page", "entry": [{"id": PAGE, "time": 1, "messaging": [{"sender": {"id": CITIZEN}}]}]},
         "messenger:empty"),
        ({"object": "page", "entry": [{"id": PAGE, "time": 1, "messaging": [
            {"sender": {"id": CITIZEN}, "message": {"mid": "m_1"}}]}]}, "messenger:message:empty"),
        ({"object": "page", "entry": [{"id": PAGE, "messaging": [
            {"sender": {"id": CITIZEN}, "postback": {"payload": "X"}}]}]}, "messenger:postback:malformed"),
    ],
)
def test_odd_payloads_are_recorded_as_unsupported_with_a_reason(payload: Any, shape: str) -> None:
    (item,) = parse_delivery(payload)
    assert isinstance(item, UnsupportedItem)
    assert item.shape == shape and item.reason and item.dedup_key.startswith("unsupported:")


def test_one_broken_event_does_not_hide_the_rest_of_the_batch() -> None:
    payload = load("messaging__message__text")
    good = payload["entry"][0]["messaging"][0]
    payload["entry"][0]["messaging"] = [None, {"sender": {}, "message": {"mid": 5}}, good]
    payload["entry"].insert(0, "garbage")
    items = parse_delivery(payload)
    assert [type(item).__name__ for item in items] == ["UnsupportedItem"] * 3 + ["NormalizedEvent"]
    assert items[-1].dedup_key == "messenger:message:m_Q1w2E3r4T5y6"


def test_parsing_leaves_the_payload_untouched() -> None:
    payload = load("batch__mixed_entries")
    before = copy.deepcopy(payload)
    parse_delivery(payload)
    assert payload == before


# What a ticket keeps of an attachment.


def test_a_shared_location_keeps_its_coordinates_and_a_map_link() -> None:
    (item,) = parse_delivery(load("messaging__message__location"))
    assert isinstance(item, NormalizedEvent)
    record = item.attachments[0].as_record()
    assert (record["lat"], record["long"]) == (-8.583069, 116.116608)
    assert record["map_url"] == ("https://www.openstreetmap.org/?mlat=-8.583069&mlon=116.116608"
                                 "#map=17/-8.583069/116.116608")
    assert record["title"] == "Lokasi Terkini"


@pytest.mark.parametrize("coordinates", [{"lat": 91, "long": 116.1}, {"lat": "x", "long": 116.1}, {"lat": True,
                                         "long": 1.0}, {"lat": -8.5}, None])
def test_coordinates_out_of_range_or_not_numbers_are_dropped_not_invented(coordinates: Any) -> None:
    payload = load("messaging__message__location")
    payload["entry"][0]["messaging"][0]["message"]["attachments"][0]["payload"] = {"coordinates": coordinates}
    (item,) = parse_delivery(payload)
    assert isinstance(item, NormalizedEvent)
    assert (item.attachments[0].lat, item.attachments[0].long) == (None, None)
    assert "map_url" not in item.attachments[0].as_record()


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if "from_page" in n))
def test_the_pages_own_actions_are_marked_in_both_payload_forms(name: str) -> None:
    assert all(isinstance(i, NormalizedEvent) and i.is_from_page for i in parse_delivery(load(name)))


def test_a_mention_edit_or_removal_is_not_a_new_complaint() -> None:
    payload = load("mention__comment__add")
    payload["entry"][0]["changes"][0]["value"]["verb"] = "remove"
    (item,) = parse_delivery(payload)
    assert isinstance(item, UnsupportedItem) and item.shape == "mention:comment.remove"
