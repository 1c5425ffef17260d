"""Citizen text as word tokens: the first step shared by normalisation and the place finder.

Links, tags and emoji become marker words the model can weigh; tokens remember where they stand in the text
and whether they were capitalised, because "Alas" mid-sentence is a place and "alas" is a word.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Every reader of citizen text (classifier, training, evaluation) reads at most this much: one Facebook comment's
# worth. Its cost grows with the text, and a body of megabytes (a paste, an attack) must not hold a worker.
MAX_TEXT_CHARS = 8_000

_URL = re.compile(r"(?:https?://|www\.)\S+")
# Personal data a citizen adds ("hubungi saya di 0812…", a NIK, an e-mail) says nothing about the agency; a NIK's
# first digits are a regency code, so left in, it sways routing. Masked before any feature is taken.
# The local part starts where its run of allowed characters starts: tried from every character of a long run
# (a paste of digits, "a.b.a.b…"), the search was quadratic (1.5 s for 8,000 characters).
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w+])(?:\+?62|0)[\s.-]?8\d(?:[\s.-]?\d){6,11}(?!\w)")
_LONG_NUMBER = re.compile(r"(?<!\w)\d(?:[\s.-]?\d){9,}(?!\w)")  # NIK (16 digits), KK, account numbers
_TAG = re.compile(r"@[\w.]+(?:\s+[A-Z][\w.]*){0,2}")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_REPEAT = re.compile(r"([a-z])\1{2,}")
_POSITIVE_EMOJI = set("🙏👍❤💕💖😍🥰👏😊🤗💪🌹✨😁😀🙂☺👌🫶💯")
_NEGATIVE_EMOJI = set("😡😠😤😭😢💔😞😩😫🤬👎😣😥😰😱🆘⚠🔥")


@dataclass(frozen=True)
class Token:
    """A lowercased word of the input with its character span (for place-name protection)."""

    text: str
    start: int
    end: int
    capitalized: bool = False


def mask_personal_data(text: str) -> str:
    """E-mail addresses, phone numbers, NIKs and other long numbers removed, URLs reduced to one marker word
    (a link is a spam signal; what it points to is not)."""
    text = _EMAIL.sub(" ", text)
    text = _URL.sub(" tautanweb ", text)
    text = _PHONE.sub(" ", text)
    return _LONG_NUMBER.sub(" ", text)


def prepare(text: str) -> str:
    """The first :data:`MAX_TEXT_CHARS` characters, NFKC, personal data masked (:func:`mask_personal_data`),
    and tags and emoji replaced with marker words the model can weigh (case is kept for tokenize(), which
    lowercases but remembers capitalised words: "Alas" mid-sentence is a place)."""
    text = mask_personal_data(unicodedata.normalize("NFKC", (text or "")[:MAX_TEXT_CHARS]))
    text = _TAG.sub(" tagorang ", text)
    pieces = []
    for char in text:
        if char in _POSITIVE_EMOJI:
            pieces.append(" emojipositif ")
        elif char in _NEGATIVE_EMOJI:
            pieces.append(" emojinegatif ")
        elif ord(char) >= 0x2600 and unicodedata.category(char) == "So":
            pieces.append(" emojilain ")
        else:
            pieces.append(char)
    return "".join(pieces)


def tokenize(prepared: str) -> list[Token]:
    """Split prepared text into lowercased word tokens; apostrophes inside names (Hu'u) are dropped.

    A token is marked capitalised when it starts with a capital in a text that is not written in capitals.
    """
    shouting = prepared.upper() == prepared
    tokens = []
    for match in _WORD.finditer(prepared):
        word = match.group()
        tokens.append(Token(
            word.replace("'", "").replace("’", "").lower(),
            match.start(),
            match.end(),
            capitalized=not shouting and word[:1].isupper(),
        ))
    return tokens


def squeeze_repeats(word: str) -> str:
    """'tolooong' -> 'tolong': a letter typed three or more times counts once."""
    return _REPEAT.sub(r"\1", word)
