"""The period a public figure covers: a month (the default), a quarter, a year or a date range, in WITA days.

People name periods by their local calendar, so a period is a span of WITA dates turned into a half-open UTC
interval ``[start, end)``. The same query parameters serve the page, the CSV and the recap command.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WITA = ZoneInfo("Asia/Makassar")
MAX_RANGE_DAYS = 366 * 2
MONTHS = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
          "November", "Desember")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


class PeriodError(ValueError):
    """A period parameter that names no period; the message says what is expected (Indonesian)."""


@dataclass(frozen=True)
class Period:
    """``first`` to ``last`` inclusive, in WITA dates; ``kind`` is bulan, kuartal, tahun or rentang."""

    kind: str
    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), tzinfo=WITA)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=WITA)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.first.isoformat()}:{self.last.isoformat()}"

    @property
    def label(self) -> str:
        if self.kind == "bulan":
            return f"{MONTHS[self.first.month - 1]} {self.first.year}"
        if self.kind == "kuartal":
            return f"Kuartal {(self.first.month - 1) // 3 + 1} {self.first.year}"
        if self.kind == "tahun":
            return f"Tahun {self.first.year}"
        return f"{_day(self.first)} – {_day(self.last)}"

    def query(self) -> dict[str, str]:
        """The query parameters that name this period again (links, the CSV download)."""
        if self.kind == "bulan":
            return {"bulan": f"{self.first:%Y-%m}"}
        if self.kind == "kuartal":
            return {"kuartal": f"{self.first.year}-Q{(self.first.month - 1) // 3 + 1}"}
        if self.kind == "tahun":
            return {"tahun": str(self.first.year)}
        return {"dari": self.first.isoformat(), "sampai": self.last.isoformat()}


def _day(value: date) -> str:
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


def month_of(year: int, month: int) -> Period:
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return Period("bulan", first, following - timedelta(days=1))


def current_month(now: datetime) -> Period:
    local = now.astimezone(WITA)
    return month_of(local.year, local.month)


def previous_month(now: datetime) -> Period:
    first = current_month(now).first - timedelta(days=1)
    return month_of(first.year, first.month)


def parse_month(text: str) -> Period:
    match = _MONTH.match(text.strip())
    if not match or not 1 <= int(match[2]) <= 12:
        raise PeriodError(f"bulan harus berbentuk TTTT-BB, misalnya 2026-11 (bukan {text!r})")
    return month_of(int(match[1]), int(match[2]))


def parse_period(args: Mapping[str, str], now: datetime) -> Period:
    """The period named by ``bulan``, ``kuartal``, ``tahun`` or ``dari``+``sampai``; this month by default."""
    if args.get("bulan"):
        return parse_month(args["bulan"])
    if args.get("kuartal"):
        match = _QUARTER.match(args["kuartal"].strip())
        if not match:
            raise PeriodError("kuartal harus berbentuk TTTT-Qn, misalnya 2026-Q4")
        year, quarter = int(match[1]), int(match[2])
        last = month_of(year, quarter * 3).last
        return Period("kuartal", date(year, quarter * 3 - 2, 1), last)
    if args.get("tahun"):
        match = _YEAR.match(args["tahun"].strip())
        if not match:
            raise PeriodError("tahun harus berbentuk TTTT, misalnya 2026")
        year = int(match[1])
        return Period("tahun", date(year, 1, 1), date(year, 12, 31))
    if args.get("dari") or args.get("sampai"):
        try:
            first = date.fromisoformat(args.get("dari", "").strip())
            last = date.fromisoformat(args.get("sampai", "").strip())
        except ValueError:
            raise PeriodError("dari dan sampai harus tanggal TTTT-BB-HH, keduanya diisi") from None
        if last < first:
            raise PeriodError("tanggal sampai tidak boleh sebelum tanggal dari")
        if (last - first).days > MAX_RANGE_DAYS:
            raise PeriodError("rentang paling panjang dua tahun")
        return Period("rentang", first, last)
    return current_month(now)
