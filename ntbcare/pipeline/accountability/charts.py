"""The weekly trend as server-rendered SVG: bars for complaints received, a line for those answered.

Written here rather than by a charting library: a dozen shapes, no script, no outside font or image, so it
passes the pages' strict CSP and renders the same in the browser, an e-mail and the PDF. Its text alternative
(a table of the same numbers) is rendered next to it by the caller; the SVG itself carries a title and a
description for screen readers. Mail clients (Gmail, Outlook) show no inline SVG, so the e-mail gets the same
layout painted as a PNG (:mod:`chart_png`).
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class Layout:
    """The chart's shapes in a 640×240 box, drawn the same as SVG (pages, PDF) and as PNG (e-mail)."""

    grid: list[tuple[float, int]]  # y of a grid line and the value it marks
    bars: list[tuple[float, float, float, float]]  # x, y, width, height of a week's "received" bar
    line: list[tuple[float, float]]  # the "answered" polyline
    labels: list[tuple[float, str]]  # x and text of a week's label under the axis
    summary: str  # one sentence: the totals (the SVG's description, the image's alt text)


def layout(weeks: list[date], points: list[tuple[int, int]]) -> Layout:
    top = _nice_max(max([received for received, _ in points] + [1]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(weeks))

    def y(value: int) -> float:
        return TOP + plot_h - plot_h * value / top

    grid = [(y(round(top * fraction)), round(top * fraction)) for fraction in (0, 0.5, 1)]
    bars, line, labels = [], [], []
    for n, (week, (received, answered)) in enumerate(zip(weeks, points, strict=True)):
        x = LEFT + n * slot
        bars.append((x + slot * 0.15, y(received), slot * 0.7, y(0) - y(received)))
        line.append((x + slot / 2, y(answered)))
        if n % 2 == 0 or len(weeks) <= 6:
            labels.append((x + slot / 2, f"{week.day}/{week.month}"))
    summary = (f"{len(weeks)} minggu terakhir: {sum(r for r, _ in points)} pengaduan diterima, "
               f"{sum(a for _, a in points)} dijawab.")
    return Layout(grid, bars, line, labels, summary)


def trend_svg(weeks: list[date], points: list[tuple[int, int]], *, title: str, chart_id: str) -> str:
    """An SVG element (markup, safe to embed) of ``points`` (received, answered) per week of ``weeks``."""
    shapes = layout(weeks, points)
    desc = f"{shapes.summary} Angka per minggu ada di tabel di bawah grafik."
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trend" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" width="100%" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
    ]
    for y, value in shapes.grid:
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                     'stroke="#d0d7de" stroke-width="1"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="#333">{value}</text>')
    for x, y, width, height in shapes.bars:
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" '
                     f'fill="{RECEIVED_COLOUR}"/>')
    for x, text in shapes.labels:
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
                     f'font-size="11" fill="#333">{text}</text>')
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in shapes.line)
    parts.append(f'<polyline points="{line}" fill="none" stroke="{ANSWERED_COLOUR}" stroke-width="3"/>')
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
