"""How dates, durations and channels read to Indonesian people: agencies' e-mails and pages alike.

Everything shows in WITA (Asia/Makassar, UTC+8), the time of the province, whatever the server's zone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

DISPLAY_TZ = ZoneInfo("Asia/Makassar")
_DAYS = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")
_MONTHS = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
           "November", "Desember")
CHANNEL_LABELS = {
    "comment": "Komentar di Halaman Facebook",
    "post": "Kiriman warga di Halaman Facebook",
    "messenger": "Pesan Facebook Messenger",
}


def format_wita(moment: datetime) -> str:
    """Indonesian long form in WITA, e.g. "Rabu, 2 Desember 2026 pukul 14.00 WITA"."""
    local = moment.astimezone(DISPLAY_TZ)
    return f"{_DAYS[local.weekday()]}, {local.day} {_MONTHS[local.month - 1]} {local.year} pukul {local:%H.%M} WITA"


def format_short_wita(moment: datetime) -> str:
    """Short form for subject lines, e.g. "2 Des 2026 14.00 WITA"."""
    local = moment.astimezone(DISPLAY_TZ)
    return f"{local.day} {_MONTHS[local.month - 1][:3]} {local.year} {local:%H.%M} WITA"


def format_duration(span: timedelta) -> str:
    """Indonesian duration rounded down to minutes, e.g. "1 hari 3 jam 5 menit"."""
    minutes = max(int(span.total_seconds() // 60), 0)
    if minutes == 0:
        return "kurang dari 1 menit"
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    pieces = [f"{n} {unit}" for n, unit in ((days, "hari"), (hours, "jam"), (minutes, "menit")) if n]
    return " ".join(pieces)


def shared_locations(attachments: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    """Locations the citizen shared (Messenger's location attachment): coordinates as text and a map link built
    from them alone, so operators and agencies can open the place; anything malformed is left out."""
    found = []
    for attachment in attachments or []:
        if not isinstance(attachment, dict) or attachment.get("type") != "location":
            continue
        lat, long = attachment.get("lat"), attachment.get("long")
        if not isinstance(lat, int | float) or not isinstance(long, int | float) or isinstance(lat, bool):
            continue
        if not (-90 <= lat <= 90 and -180 <= long <= 180):
            continue
        found.append({"coordinates": f"{lat:.6f}, {long:.6f}",
                      "map_url": f"https://www.openstreetmap.org/?mlat={lat:.6f}&mlon={long:.6f}#map=17/"
                                 f"{lat:.6f}/{long:.6f}"})
    return found
