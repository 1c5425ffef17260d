"""Personal data in citizens' public text: NIK (16-digit ID), phone numbers and e-mail addresses.

Used twice: to decide whether a public comment must be hidden (the conversation then continues privately),
and to scrub anything we post publicly, so a public reply never repeats a citizen's personal data even when
an agency quotes it in its answer.

People write numbers in many ways, so the text is folded with NFKC first (full-width ``５２０１`` and ``＋６２``
count as digits and a plus sign) and digits may be grouped by spaces, dots and dashes anywhere. Every pattern
runs in linear time, and a text is read up to ``MAX_CHARS`` only (a comment has at most 8,000 characters, an
agency answer 2,000), so a longer text costs no more to check than that.
"""

from __future__ import annotations

import re
import unicodedata

MASK = "[disamarkan]"
# How much of a text is examined: above the longest comment (8,000) and far above any public reply we write.
# ``scrub`` cuts a longer text there, so nothing unexamined is ever published.
MAX_CHARS = 10_000
CUT = " …"

# What may stand between the digits of one number once folded: spaces, dots, hyphens and dashes, up to three.
_SEP = r"[ \t.\-\u2010-\u2015\u2212]"
_GAP = _SEP + "{0,3}"

# A NIK is 16 digits: in one run, or in groups that do not run on into further digits (so that a list of
# amounts or dates is not one long "number").
NIK = re.compile(
    r"(?<!\d)\d{16}(?!\d)"
    rf"|(?<!\d)(?<!\d{_SEP})(?<!\d{_SEP}{{2}})(?<!\d{_SEP}{{3}})\d(?:{_GAP}\d){{15}}(?!{_GAP}\d)"
)
# Indonesian numbers: mobiles as 08.., 628.., +628..; any +62 number (landlines too); separators allowed.
PHONE = re.compile(
    rf"(?<![\w+])(?:(?:\(?\+62\)?|62|0){_GAP}8\d(?:{_GAP}\d){{6,11}}"
    rf"|\(?\+62\)?{_GAP}\(?\d{{2,4}}\)?(?:{_GAP}\d){{5,9}})(?!\d)"
)
# The local part starts where its run of allowed characters starts (the lookbehind): trying it from every
# character of a long run made the search quadratic. The domain labels and dots cannot overlap, so the rest
# backtracks at most once per label.
EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PATTERNS = (("nik", NIK), ("email", EMAIL), ("phone", PHONE))

# Read backwards from a cut: the unfinished last word, then the digit groups before it (a number may be split).
_UNFINISHED_END = re.compile(rf"\S*(?:[\s\d()+]|{_SEP})*")


def _fold(text: str) -> tuple[str, list[int] | None]:
    """NFKC, character by character so that each folded character maps back to its place (None: unchanged)."""
    if unicodedata.is_normalized("NFKC", text):
        return text, None
    pieces = [unicodedata.normalize("NFKC", char) for char in text]
    origin = [index for index, piece in enumerate(pieces) for _ in piece]
    return "".join(pieces), origin


def _spans(text: str) -> list[tuple[str, int, int]]:
    """Each finding in ``text`` (at most MAX_CHARS long): its kind and where it lies in ``text``."""
    folded, origin = _fold(text)
    found = []
    for kind, pattern in PATTERNS:
        for match in pattern.finditer(folded):
            start, end = match.span()
            if origin is not None:
                start, end = origin[start], origin[end - 1] + 1
            found.append((kind, start, end))
    return found


def personal_data_kinds(text: str | None) -> list[str]:
    """Which kinds of personal data the text contains ("nik", "email", "phone"), in that order."""
    if not text:
        return []
    folded, _ = _fold(text[:MAX_CHARS])
    return [kind for kind, pattern in PATTERNS if pattern.search(folded)]


def contains_personal_data(text: str | None) -> bool:
    return bool(personal_data_kinds(text))


def scrub(text: str) -> str:
    """The text with every NIK, e-mail address and phone number replaced by a visible mask.

    A text longer than MAX_CHARS is cut there, with any unfinished word or digit group at the cut, so that no
    part of a number is published that was not examined whole.
    """
    cut = len(text) > MAX_CHARS
    if cut:
        text = text[:MAX_CHARS]
        unfinished = _UNFINISHED_END.match(text[::-1])  # anchored at the cut: one linear pass, never fails
        text = text[: len(text) - unfinished.end()] if unfinished else text
    merged: list[list[int]] = []
    for _, start, end in sorted(_spans(text), key=lambda finding: finding[1]):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    pieces, position = [], 0
    for start, end in merged:
        pieces += [text[position:start], MASK]
        position = end
    pieces.append(text[position:])
    return "".join(pieces) + (CUT if cut else "")
