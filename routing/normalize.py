"""Text normalisation for citizen messages: informal Indonesian, Sasak, typos, emoji.

Place names are protected: the location finder marks their tokens first and the slang map never touches
them (a slang rule once rewrote the village "Sampe" into "sampai", and "smp" is a junior high school here,
never "sampai").
"""

from __future__ import annotations

from functools import lru_cache

from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

from routing.location import gazetteer
from routing.tokens import Token, prepare, squeeze_repeats, tokenize
from routing.words import SLANG

_STEM_EXEMPT_LENGTH = 4


def _normal_word(word: str) -> str:
    if word.isdigit():
        return "number"
    squeezed = squeeze_repeats(word)
    if squeezed.endswith("2") and squeezed[:-1].isalpha():
        squeezed = squeezed[:-1]
    return SLANG.get(squeezed, squeezed)


class Stemmer:
    """Sastrawi stemming with a per-word cache: Sastrawi is slow per call but words repeat a lot."""

    def __init__(self) -> None:
        self._stemmer = StemmerFactory().create_stemmer()
        self._cache: dict[str, str] = {}

    def stem(self, word: str) -> str:
        """The word's root (short and non-alphabetic words are kept as they are)."""
        cached = self._cache.get(word)
        if cached is None:
            if len(word) <= _STEM_EXEMPT_LENGTH or not word.isalpha():
                cached = word
            else:
                cached = self._stemmer.stem(word) or word
            if len(self._cache) < 200_000:
                self._cache[word] = cached
        return cached


@lru_cache(maxsize=1)
def shared_stemmer() -> Stemmer:
    """One stemmer per process (building Sastrawi's dictionary costs ~0.3 s)."""
    return Stemmer()


def normalize_tokens(
    tokens: list[Token], protected: set[int] | None = None, *, stem: bool = False
) -> list[str]:
    """Normalise word tokens; indexes in `protected` (place names) are kept exactly as written."""
    protected = protected or set()
    stemmer = shared_stemmer() if stem else None
    words: list[str] = []
    for index, token in enumerate(tokens):
        if index in protected:
            words.append(token.text)
            continue
        word = _normal_word(token.text)
        if stemmer is not None and " " not in word:
            word = stemmer.stem(word)
        words.append(word)
    return words


def normalize(text: str, *, stem: bool = False) -> str:
    """Normalised text for the features, place names protected (see routing.location)."""
    tokens = tokenize(prepare(text))
    protected = gazetteer().protected_indexes(tokens)
    return " ".join(normalize_tokens(tokens, protected, stem=stem))
