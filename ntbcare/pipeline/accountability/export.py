"""The figures as rows: the CSV download, the recap's attachment and the tables share one column order."""

from __future__ import annotations

import csv
import io

from ntbcare.pipeline.accountability.figures import Figures, Report

COLUMNS = ("kode", "instansi", "diterima", "dijawab", "dijawab_tepat_waktu", "persen_tepat_waktu",
           "median_jam", "p90_jam", "tunggakan", "lewat_tenggat", "bukan_kewenangan", "penilaian", "persen_puas",
           # the deadline share's denominator: received tickets answered or past their deadline (last, so the
           # columns before it keep their places)
           "dinilai_tenggat")
# The sortable columns of the page and the Figures attribute behind each.
SORT_KEYS = {
    "instansi": "name", "diterima": "received", "dijawab": "answered", "tepat_waktu": "within_share",
    "median": "median_hours", "p90": "p90_hours", "tunggakan": "backlog", "lewat_tenggat": "overdue",
    "bukan_kewenangan": "bounces", "puas": "satisfaction",
}


def hours(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def row_values(row: Figures) -> list[str | int]:
    return [row.code, row.name, row.received, row.answered, row.within_deadline, percent(row.within_share),
            hours(row.median_hours), hours(row.p90_hours), row.backlog, row.overdue, row.bounces, row.ratings,
            percent(row.satisfaction), row.due]


def sorted_rows(report: Report, key: str = "diterima", descending: bool = True) -> list[Figures]:
    """The agencies' rows by a column of the page (rows without a value last), then by name."""
    attribute = SORT_KEYS.get(key, "received")
    present = [r for r in report.agencies if getattr(r, attribute) is not None]
    missing = [r for r in report.agencies if getattr(r, attribute) is None]
    present.sort(key=lambda r: r.name)
    present.sort(key=lambda r: getattr(r, attribute), reverse=descending)
    return present + sorted(missing, key=lambda r: r.name)


def report_csv(report: Report) -> str:
    """UTF-8 CSV text: a header row, the province's totals, then each agency (most complaints first)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerow(row_values(report.province))
    for row in sorted_rows(report):
        writer.writerow(row_values(row))
    return out.getvalue()
