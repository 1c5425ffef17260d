"""The weekly trend painted as a PNG for the recap e-mail: Gmail and Outlook show no inline SVG, every mail
client shows an image attached inline (``Content-ID``, ``<img src="cid:…">``).

Painted with Pillow (a dependency of WeasyPrint, wheels on PyPI for every platform, nothing downloaded at run
time) from the same :func:`charts.layout` as the SVG, at twice the size for sharp screens; labels in Debian's
DejaVu Sans (``fonts-dejavu-core``, which the PDF uses too), or Pillow's bundled font where it is missing.
"""

from __future__ import annotations

import io
from datetime import date
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ntbcare.pipeline.accountability.charts import (
    ANSWERED_COLOUR,
    BOTTOM,
    HEIGHT,
    LEFT,
    RECEIVED_COLOUR,
    RIGHT,
    WIDTH,
    layout,
)

SCALE = 2
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@cache
def _font(size: int) -> Font:
    if DEJAVU.exists():
        return ImageFont.truetype(str(DEJAVU), size * SCALE)
    return ImageFont.load_default(size * SCALE)


def trend_png(weeks: list[date], points: list[tuple[int, int]]) -> bytes:
    """PNG bytes of the chart ``charts.trend_svg`` draws for the same weeks and points."""
    shapes = layout(weeks, points)
    image = Image.new("RGB", (WIDTH * SCALE, HEIGHT * SCALE), "white")
    draw = ImageDraw.Draw(image)

    def at(x: float, y: float) -> tuple[float, float]:
        return x * SCALE, y * SCALE

    for y, value in shapes.grid:
        draw.line([at(LEFT, y), at(WIDTH - RIGHT, y)], fill="#d0d7de", width=SCALE)
        draw.text(at(LEFT - 6, y), str(value), fill="#333333", font=_font(11), anchor="rm")
    for x, y, width, height in shapes.bars:
        if height > 0:
            draw.rectangle([at(x, y), at(x + width, y + height)], fill=RECEIVED_COLOUR)
    for x, text in shapes.labels:
        draw.text(at(x, HEIGHT - BOTTOM + 16), text, fill="#333333", font=_font(11), anchor="ms")
    draw.line([at(x, y) for x, y in shapes.line], fill=ANSWERED_COLOUR, width=3 * SCALE, joint="curve")
    legend_y = HEIGHT - 8
    draw.rectangle([at(LEFT, legend_y - 10), at(LEFT + 12, legend_y + 2)], fill=RECEIVED_COLOUR)
    draw.text(at(LEFT + 18, legend_y), "Diterima", fill="#111111", font=_font(12), anchor="ls")
    draw.line([at(LEFT + 100, legend_y - 4), at(LEFT + 124, legend_y - 4)], fill=ANSWERED_COLOUR, width=3 * SCALE)
    draw.text(at(LEFT + 130, legend_y), "Dijawab", fill="#111111", font=_font(12), anchor="ls")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
