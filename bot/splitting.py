"""Messenger takes at most 2,000 characters a message: a longer text goes out as several, cut where a reader
expects a break (a paragraph, else a sentence, else a word), never inside a word unless a word alone is too long.

Pure functions; the outbox (:mod:`bot.outbox`) owes one row per part, each sent after the one before it.
"""

from __future__ import annotations

import re

MESSENGER_LIMIT = 2000  # characters, as the Send API counts them
_BREAKS = (re.compile(r"\n\s*\n"), re.compile(r"\n"), re.compile(r"(?<=[.!?…])\s+"), re.compile(r"\s+"))


def split_message(text: str, limit: int = MESSENGER_LIMIT) -> list[str]:
    """``text`` as parts of at most ``limit`` characters, in order, each stripped; one part when it fits.

    Every character but the whitespace at a cut is kept, so the parts joined read as the original.
    """
    if limit < 2:
        raise ValueError("limit must leave room for text")
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        end, start = _break(rest, limit)
        parts.append(rest[:end].rstrip())
        rest = rest[start:].lstrip()
    if rest or not parts:
        parts.append(rest)
    return parts


def _break(text: str, limit: int) -> tuple[int, int]:
    """Where the first part ends and the next begins: the last break of the strongest kind that starts within
    ``limit`` characters and leaves a first part of at least a quarter of the limit; else a hard cut."""
    window = text[: limit + 1]
    for pattern in _BREAKS:
        matches = [m for m in pattern.finditer(window) if limit // 4 < m.start() <= limit]
        if matches:
            return matches[-1].start(), matches[-1].end()
    return limit, limit


def shorten(text: str, limit: int = MESSENGER_LIMIT) -> str:
    """``text`` cut to ``limit`` characters at a word boundary with an ellipsis (for the one private reply
    Facebook allows per comment, which cannot be followed by a second message)."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rfind(" ")
    if space > limit // 2:
        head = head[:space]
    return head.rstrip() + "…"
