"""The public page ``/transparansi``: every agency's figures for a period, the province's totals on top, a
weekly trend; a page per agency with its recent anonymised tickets; the same rows as CSV.

No login, no script, no outside font or image: sorting is a link, the chart is SVG written on the server.
Figures come from :mod:`ntbcare.pipeline.accountability.figures` (cached per period); tickets only through
:mod:`ntbcare.pipeline.accountability.listing`, which never returns a ticket that must stay private.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, render_template, request, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from ntbcare.core.models import Agency, utcnow
from ntbcare.pipeline.accountability.cache import Busy, cached_report
from ntbcare.pipeline.accountability.charts import trend_svg
from ntbcare.pipeline.accountability.export import SORT_KEYS, hours, percent, report_csv, sorted_rows
from ntbcare.pipeline.accountability.figures import PROVINCE, Report
from ntbcare.pipeline.accountability.listing import recent_for_agency
from ntbcare.pipeline.accountability.periods import WITA, Period, PeriodError, parse_period
from ntbcare.web.context import current_runtime
from ntbcare.web.errors import Wording, error_page

bp = Blueprint("transparency", __name__, url_prefix="/transparansi")
ERRORS = Wording(by_status={404: "Instansi tidak ditemukan. Kembali ke halaman transparansi."})
PUBLIC_CACHE = "public, max-age=60"


def _period() -> Period:
    try:
        return parse_period(request.args, utcnow())
    except PeriodError as exc:
        raise _BadPeriod(str(exc)) from None


class _BadPeriod(Exception):
    pass


def _report(period: Period) -> Report:
    runtime = current_runtime()
    return cached_report(runtime.db, runtime.pipeline.deadline_policy, period, utcnow())


def _url(endpoint: str, period: Period) -> str:
    values: dict[str, Any] = dict(period.query())
    return url_for(endpoint, **values)


def _cacheable(response: Response) -> Response:
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return response


@bp.errorhandler(_BadPeriod)
def _bad_period(exc: _BadPeriod) -> Response:
    return error_page(400, f"Periode tidak dikenali: {exc}")


BUSY_TEXT = "Angka periode lain sedang dihitung. Silakan muat ulang halaman ini dalam beberapa detik."


def _busy_headers(response: Response, exc: Busy) -> Response:
    response.headers["Retry-After"] = str(exc.retry_after)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(Busy)
def _busy(exc: Busy) -> Response:
    """Too many periods computing at once in this process: a short 503 the visitor (or crawler) retries."""
    return _busy_headers(error_page(503, BUSY_TEXT), exc)


def _chart(report: Report, code: str, title: str) -> Markup:
    points = report.trend.get(code) or [(0, 0)] * len(report.weeks)
    return Markup(trend_svg(report.weeks, points, title=title, chart_id=f"tren-{code.lower()}"))


@bp.get("")
def overview() -> ResponseReturnValue:
    period = _period()
    report = _report(period)
    key = request.args.get("urut", "diterima")
    key = key if key in SORT_KEYS else "diterima"
    descending = request.args.get("arah", "turun") != "naik"
    rows = sorted_rows(report, key, descending)

    def sort_link(column: str) -> str:
        direction = "naik" if column == key and descending else "turun"
        values: dict[str, Any] = {**period.query(), "urut": column, "arah": direction}
        return url_for(".overview", **values)

    html = render_template("public/transparansi.html", report=report, period=period, rows=rows, sort_key=key,
                           descending=descending, sort_link=sort_link, hours=hours, percent=percent,
                           chart=_chart(report, PROVINCE, f"Tren mingguan Provinsi NTB, {period.label}"),
                           points=report.trend.get(PROVINCE) or [], csv_url=_url("transparency_csv", period))
    return _cacheable(Response(html))


@bp.get("/<code>")
def agency_page(code: str) -> ResponseReturnValue:
    runtime = current_runtime()
    with runtime.db.read_session() as session:
        agency = session.get(Agency, code.upper()) or session.get(Agency, code)
        if agency is None or not agency.active:
            abort(404)
        tickets = recent_for_agency(session, agency.code)
        name, agency_code = agency.name, agency.code
    period = _period()
    report = _report(period)
    row = report.row(agency_code)
    html = render_template("public/agency.html", report=report, period=period, row=row, name=name,
                           code=agency_code, tickets=tickets, wita=WITA, hours=hours, percent=percent,
                           chart=_chart(report, agency_code, f"Tren mingguan {name}, {period.label}"),
                           points=report.trend.get(agency_code) or [(0, 0)] * len(report.weeks))
    return _cacheable(Response(html))


def transparency_csv() -> ResponseReturnValue:
    """``/transparansi.csv``: the page's rows for the same period parameters (UTF-8, header row)."""
    try:
        period = parse_period(request.args, utcnow())
    except PeriodError as exc:
        return Response(f"Periode tidak dikenali: {exc}\n", 400, mimetype="text/plain")
    try:
        body = report_csv(_report(period))
    except Busy as exc:
        return _busy_headers(Response(BUSY_TEXT + "\n", 503, mimetype="text/plain"), exc)
    filename = f"transparansi-{period.first.isoformat()}-{period.last.isoformat()}.csv"
    response = Response(body.encode("utf-8"), mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return _cacheable(response)


bp.record_once(lambda state: state.app.add_url_rule("/transparansi.csv", "transparency_csv", transparency_csv))
