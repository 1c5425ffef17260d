"""Personal data in citizens' public text: NIK (16-digit ID), phone numbers and e-mail addresses.

Used twice: to decide whether a public comment must be hidden (the conversation then continues privately),
and to scrub anything we post publicly, so a public reply never repeats a citizen's personal data even when
an agency quotes it in its answer.
"""

from __future__ import annotations

import re

MASK = "[disamarkan]"

# A NIK is 16 digits, sometimes typed in groups (6-6-4).
NIK = re.compile(r"(?<![\d])(?:\d{16}|\d{6}[ .-]\d{6}[ .-]\d{4})(?![\d])")
# Indonesian numbers: mobiles as 08.., 628.., +628..; any +62 number (landlines too); separators allowed.
PHONE = re.compile(
    r"(?<![\w+])(?:(?:\+62|62|0)[ .-]?8\d(?:[ .-]?\d){6,11}|\+62[ .-]?\(?\d{2,4}\)?(?:[ .-]?\d){5,9})(?![\d])"
)
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PATTERNS = (("nik", NIK), ("email", EMAIL), ("phone", PHONE))


def personal_data_kinds(text: str | None) -> list[str]:
    """Which kinds of personal data the text contains ("nik", "email", "phone"), in that order."""
    if not text:
        return []
    return [kind for kind, pattern in PATTERNS if pattern.search(text)]


def contains_personal_data(text: str | None) -> bool:
    return bool(personal_data_kinds(text))


def scrub(text: str) -> str:
    """The text with every NIK, e-mail address and phone number replaced by a visible mask."""
    for _, pattern in PATTERNS:
        text = pattern.sub(MASK, text)
    return text
