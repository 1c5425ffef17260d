"""The monthly recap the province used to compile by hand: one row per agency, the province's trend and the
ten oldest open complaints, as HTML, CSV or PDF (WeasyPrint with Debian's fonts), and e-mailed on the first
working day of each month to ``OPERATOR_EMAILS`` and every agency head.

The e-mail is an outbox row keyed ``recap:<YYYY-MM>`` like every e-mail, owed from 07:00 on the first working day
until that row exists, so however many sweepers run (or however late one comes back) it is owed, and sent, once.
It is built when it is sent, from the same figures as the public page; like the page it holds nothing personal
(texts scrubbed, withheld tickets only counted). Its chart is a PNG attached inline, as mail clients show no SVG.
"""

from __future__ import annotations

from datetime import datetime, time
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ntbcare.core.db import Database
from ntbcare.core.models import Agency, OutboundMail, Ticket, utcnow
from ntbcare.core.settings import Settings
from ntbcare.pipeline.accountability.charts import HEIGHT, WIDTH, layout, trend_svg
from ntbcare.pipeline.accountability.export import hours, percent, report_csv, sorted_rows
from ntbcare.pipeline.accountability.figures import PROVINCE, Report, compute
from ntbcare.pipeline.accountability.listing import oldest_open
from ntbcare.pipeline.accountability.periods import WITA, Period, parse_month, previous_month
from routing.deadlines import DeadlinePolicy, WorkingCalendar
from routing.route import add_mail

RECAP_STARTS = time(7, 0)  # WITA, on the first working day
FORMATS = ("html", "csv", "pdf")
_env = Environment(loader=PackageLoader("ntbcare", "templates/recap"), autoescape=select_autoescape(["html"]))


def first_working_day(calendar: WorkingCalendar, year: int, month: int) -> datetime:
    """Opening time of the month's first working day (UTC)."""
    return calendar.next_open(datetime(year, month, 1, 0, 0, tzinfo=WITA))


def recap_due(calendar: WorkingCalendar, now: datetime) -> bool:
    """From 07:00 WITA on the month's first working day on: a sweeper down all that day still owes last month's
    recap when it comes back (the outbox key keeps it to one e-mail)."""
    local = now.astimezone(WITA)
    first = first_working_day(calendar, local.year, local.month).astimezone(WITA).date()
    return local >= datetime.combine(first, RECAP_STARTS, tzinfo=WITA)


def recap_recipients(session: Session, settings: Settings) -> list[str]:
    heads = [address for agency in session.scalars(select(Agency).where(Agency.active.is_(True)).order_by(Agency.code))
             for address in (agency.data or {}).get("head_emails") or []]
    return list(dict.fromkeys([*settings.operator_emails, *heads]))


def owe_monthly_recap(db: Database, settings: Settings, policy: DeadlinePolicy,
                      now: datetime | None = None) -> list[int]:
    """From the first working day on, owe last month's recap while none is recorded (once per month, however
    many sweepers race: the key is unique), unless no complaint had been recorded by that month's end; returns
    the new mail's id."""
    at = now or utcnow()
    if not recap_due(policy.calendar, at):
        return []
    period = previous_month(at)
    key = f"recap:{period.first:%Y-%m}"
    with db.scope() as session:
        if session.scalar(select(OutboundMail.id).where(OutboundMail.key == key)) is not None:
            return []  # the common case on every sweep after the first: one indexed look-up
        first = session.scalar(select(func.min(Ticket.opened_at)))
        if first is None or first >= period.end:
            return []  # the service was not running yet that month: a new installation mails no empty recap
        recipients = recap_recipients(session, settings)
        if not recipients:
            return []
        mail = add_mail(session, key=key, kind="recap", ticket=None, agency_code=None, recipients=recipients)
        if mail is None:
            return []
        session.flush()
        return [mail.id]


def render_html(session: Session, settings: Settings, policy: DeadlinePolicy, period: Period,
                now: datetime, *, chart_cid: str | None = None, report: Report | None = None) -> str:
    """The recap as HTML: the chart as SVG (the file and the PDF), or with ``chart_cid`` as an ``<img>`` of the
    inline PNG part of that Content-ID (the e-mail: mail clients show no SVG)."""
    report = report or compute(session, policy, period, now)
    points = report.trend.get(PROVINCE) or [(0, 0)] * len(report.weeks)
    title = f"Tren mingguan Provinsi NTB, {period.label}"
    if chart_cid is None:
        chart = Markup(trend_svg(report.weeks, points, title=title, chart_id="rekap"))
    else:
        chart = Markup('<img src="cid:{}" alt="{}" width="{}" height="{}" style="width:100%;max-width:{}px;'
                       'height:auto">').format(chart_cid, f"{title}. {layout(report.weeks, points).summary}",
                                               WIDTH, HEIGHT, WIDTH)
    return _env.get_template("recap.html").render(
        report=report, period=period, rows=sorted_rows(report), chart=chart, points=points,
        oldest=oldest_open(session, limit=10), hours=hours, percent=percent,
        wita=lambda moment: moment.astimezone(WITA).strftime("%d/%m/%Y %H.%M"),
        made=now.astimezone(WITA).strftime("%d/%m/%Y %H.%M"),
        public_url=f"{settings.public_base_url.rstrip('/')}/transparansi?bulan={period.first:%Y-%m}")


def render(session: Session, settings: Settings, policy: DeadlinePolicy, period: Period, now: datetime,
           fmt: str) -> bytes:
    """The recap of ``period`` as ``html``, ``csv`` (UTF-8) or ``pdf``."""
    if fmt == "csv":
        return report_csv(compute(session, policy, period, now)).encode("utf-8")
    html = render_html(session, settings, policy, period, now)
    if fmt == "html":
        return html.encode("utf-8")
    if fmt == "pdf":
        from weasyprint import HTML  # heavy (Pango): loaded only when a PDF is made

        return bytes(HTML(string=html).write_pdf())
    raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")


def build_recap_mail(session: Session, settings: Settings, mail: OutboundMail, now: datetime,
                     policy: DeadlinePolicy) -> EmailMessage:
    """The recap e-mail: a plain-text summary, the HTML recap with the chart as an inline PNG (a related part
    its ``<img>`` names by Content-ID), and the CSV and PDF (chart as SVG) attached."""
    period = parse_month(mail.key.split(":", 1)[1])
    report = compute(session, policy, period, now)
    cid = make_msgid("tren", domain="ntbcare.invalid")
    mail_html = render_html(session, settings, policy, period, now, chart_cid=cid[1:-1], report=report)
    html = render_html(session, settings, policy, period, now, report=report)
    province = report.province
    message = EmailMessage()
    message["Subject"] = f"[NTB Care] Rekap bulanan pengaduan: {period.label}"
    message["From"] = settings.mail_from
    message["To"] = ", ".join(mail.recipients)
    message["Date"] = format_datetime(now)
    if mail.message_id:
        message["Message-ID"] = mail.message_id
    message.set_content(
        f"Rekap bulanan NTB Care, {period.label}.\n\n"
        f"Provinsi: {province.received} pengaduan diterima, {province.answered} dijawab, "
        f"{percent(province.within_share) or '-'}% tepat waktu, tunggakan {province.backlog} "
        f"({province.overdue} lewat tenggat).\n\nRincian per instansi ada di lampiran (CSV dan PDF) dan di "
        f"{settings.public_base_url.rstrip('/')}/transparansi?bulan={period.first:%Y-%m}\n")
    message.add_alternative(mail_html, subtype="html")
    points = report.trend.get(PROVINCE) or [(0, 0)] * len(report.weeks)
    from ntbcare.pipeline.accountability.chart_png import trend_png  # Pillow: loaded only when a recap is sent

    html_part = message.get_body(preferencelist=("html",))
    assert html_part is not None
    html_part.add_related(trend_png(report.weeks, points), maintype="image", subtype="png", cid=cid,
                          filename="tren-mingguan.png", disposition="inline")
    stem = f"rekap-ntbcare-{period.first:%Y-%m}"
    message.add_attachment(report_csv(report).encode("utf-8"), maintype="text", subtype="csv",
                           filename=f"{stem}.csv")
    from weasyprint import HTML

    message.add_attachment(bytes(HTML(string=html).write_pdf()), maintype="application", subtype="pdf",
                           filename=f"{stem}.pdf")
    return message
