"""The weekly trend as server-rendered SVG: bars for complaints received, a line for those answered.

Written here rather than by a charting library: a dozen shapes, no script, no outside font or image, so it
passes the pages' strict CSP and renders the same in the browser, an e-mail and the PDF. Its text alternative
(a table of the same numbers) is rendered next to it by the caller; the SVG itself carries a title and a
description for screen readers.
"""

from __future__ import annotations

from datetime import date
from html import escape

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 40, 12, 16, 40
RECEIVED_COLOUR = "#0b4f8a"
ANSWERED_COLOUR = "#c2410c"


def _nice_max(value: int) -> int:
    for step in (5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000):
        if value <= step:
            return step
    return value


def trend_svg(weeks: list[date], points: list[tuple[int, int]], *, title: str, chart_id: str) -> str:
    """An SVG element (markup, safe to embed) of ``points`` (received, answered) per week of ``weeks``."""
    top = _nice_max(max([received for received, _ in points] + [1]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(weeks))

    def y(value: int) -> float:
        return TOP + plot_h - plot_h * value / top

    total_received = sum(r for r, _ in points)
    total_answered = sum(a for _, a in points)
    desc = (f"{len(weeks)} minggu terakhir: {total_received} pengaduan diterima, {total_answered} dijawab. "
            "Angka per minggu ada di tabel di bawah grafik.")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trend" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" width="100%" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
    ]
    for fraction in (0, 0.5, 1):
        value = round(top * fraction)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
                     'stroke="#d0d7de" stroke-width="1"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="#333">{value}</text>')
    line: list[str] = []
    for n, (week, (received, answered)) in enumerate(zip(weeks, points, strict=True)):
        x = LEFT + n * slot
        bar_h = y(0) - y(received)
        parts.append(f'<rect x="{x + slot * 0.15:.1f}" y="{y(received):.1f}" width="{slot * 0.7:.1f}" '
                     f'height="{bar_h:.1f}" fill="{RECEIVED_COLOUR}"/>')
        line.append(f"{x + slot / 2:.1f},{y(answered):.1f}")
        if n % 2 == 0 or len(weeks) <= 6:
            parts.append(f'<text x="{x + slot / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
                         f'font-size="11" fill="#333">{week.day}/{week.month}</text>')
    parts.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="{ANSWERED_COLOUR}" stroke-width="3"/>')
    legend_y = HEIGHT - 8
    parts += [
        f'<rect x="{LEFT}" y="{legend_y - 10}" width="12" height="12" fill="{RECEIVED_COLOUR}"/>',
        f'<text x="{LEFT + 18}" y="{legend_y}" font-size="12" fill="#111">Diterima</text>',
        f'<line x1="{LEFT + 100}" x2="{LEFT + 124}" y1="{legend_y - 4}" y2="{legend_y - 4}" '
        f'stroke="{ANSWERED_COLOUR}" stroke-width="3"/>',
        f'<text x="{LEFT + 130}" y="{legend_y}" font-size="12" fill="#111">Dijawab</text>',
        "</svg>",
    ]
    return "".join(parts)
