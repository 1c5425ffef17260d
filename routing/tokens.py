"""Citizen text as word tokens: the first step shared by normalisation and the place finder.

Links, tags and emoji become marker words the model can weigh; tokens remember where they stand in the text
and whether they were capitalised, because "Alas" mid-sentence is a place and "alas" is a word.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_URL = re.compile(r"(?:https?://|www\.)\S+")
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


def prepare(text: str) -> str:
    """NFKC, and URLs, tags and emoji replaced with marker words the model can weigh (case is kept for
    tokenize(), which lowercases but remembers capitalised words: "Alas" mid-sentence is a place)."""
    text = unicodedata.normalize("NFKC", text or "")
    text = _URL.sub(" tautanweb ", text)
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
