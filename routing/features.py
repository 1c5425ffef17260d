"""Features of a message: normalised text n-grams plus registry keyword and location evidence.

Keyword hits become features whose weight the model learns from labelled data (and operator decisions),
so a keyword is evidence, never a verdict: an island name or a port mentioned in passing cannot force a
target the way fixed rules did in the first baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from routing.location import LocationMatch, gazetteer
from routing.normalize import normalize_tokens
from routing.registry import AgencyRecord, load_registry
from routing.tokens import prepare, tokenize

META_WEIGHT = 0.6
CHAR_RANGE = (2, 5)
ROAD_WORDS = frozenset({"jalan", "aspal", "aspalnya"})
ROAD_DAMAGE_WORDS = frozenset({
    "rusak", "berlubang", "lubang", "hancur", "amblas", "retak", "ambles", "lobang", "becek",
})
# Words that tell who owns a road: without one, a road complaint cannot be routed between province, nation
# and regency, and an operator decides ("unknown road status" in the routing lessons).
ROAD_STATUS_WORDS = frozenset({
    "provinsi", "prov", "nasional", "negara", "kabupaten", "kab", "desa", "dusun", "gang", "gg", "lingkungan",
    "kota", "lintas", "bypass", "kampung", "perumahan", "setapak", "tani", "usaha", "dsn", "rt", "rw",
})


@dataclass(frozen=True)
class Analysis:
    """Everything the model needs from one text, computed once."""

    normalized: str
    location: LocationMatch | None
    meta: str
    road_status_unknown: bool = False


class KeywordIndex:
    """Registry keywords, names and aliases as normalised token tuples -> target codes."""

    def __init__(self, records: list[AgencyRecord]) -> None:
        self._phrases: dict[tuple[str, ...], set[str]] = {}
        for record in records:
            for kind, phrases in (("kw", record.keywords), ("name", [*record.aliases, *record.old_names])):
                for phrase in phrases:
                    key = tuple(" ".join(normalize_tokens(tokenize(prepare(phrase)))).split())
                    if key:
                        self._phrases.setdefault(key, set()).add(f"{kind}_{record.code}")
        self._max_words = max(len(key) for key in self._phrases)

    def hits(self, words: list[str]) -> list[str]:
        """Feature names of every phrase found in the normalised words (overlaps allowed)."""
        found = []
        for start in range(len(words)):
            for length in range(1, min(self._max_words, len(words) - start) + 1):
                labels = self._phrases.get(tuple(words[start : start + length]))
                if labels:
                    found.extend(sorted(labels))
        return found


@lru_cache(maxsize=1)
def keyword_index() -> KeywordIndex:
    """Index of the bundled registry."""
    return KeywordIndex(load_registry())


def analyse(text: str, *, stem: bool = False) -> Analysis:
    """Normalise a text with place names protected, find its location and its keyword evidence."""
    tokens = tokenize(prepare(text))
    places = gazetteer()
    spans = places.mentions(tokens)
    words = normalize_tokens(tokens, places.protected_indexes(tokens, spans), stem=stem)
    flat = " ".join(words).split()
    location = places.resolve(tokens, spans)
    meta = keyword_index().hits(flat)
    if location is not None:
        meta.append(f"loc_{location.code}")
        meta.append("loc_desa" if location.desa else "loc_kec" if location.kecamatan else "loc_kab")
    else:
        meta.append("loc_none")
    vocabulary = set(flat)
    road_status_unknown = bool(
        vocabulary & ROAD_WORDS and vocabulary & ROAD_DAMAGE_WORDS and not vocabulary & ROAD_STATUS_WORDS
    )
    if road_status_unknown:
        meta.append("road_status_unknown")
    return Analysis(" ".join(words), location, " ".join(meta), road_status_unknown)


class FeatureBuilder:
    """TF-IDF word 1-2-grams and char_wb 2-5-grams on normalised text plus scaled evidence features."""

    def __init__(self) -> None:
        self.words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, token_pattern=r"\S+")
        self.chars = TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_RANGE, sublinear_tf=True, min_df=2)
        self.meta = CountVectorizer(token_pattern=r"\S+", lowercase=False, binary=True)

    def fit_transform(self, analyses: list[Analysis]) -> sparse.csr_matrix:
        """Learn the vocabularies from training texts and return their feature matrix."""
        normalized = [analysis.normalized for analysis in analyses]
        matrix = self._stack(
            self.words.fit_transform(normalized),
            self.chars.fit_transform(normalized),
            self.meta.fit_transform([analysis.meta for analysis in analyses]),
        )
        for vectorizer in (self.words, self.chars, self.meta):
            # The n-grams pruned by min_df are kept only for introspection; dropping them halves the model file.
            if hasattr(vectorizer, "stop_words_"):
                del vectorizer.stop_words_
        return matrix

    def transform(self, analyses: list[Analysis]) -> sparse.csr_matrix:
        """Feature matrix of new texts over the vocabularies learned in training."""
        normalized = [analysis.normalized for analysis in analyses]
        return self._stack(
            self.words.transform(normalized),
            self.chars.transform(normalized),
            self.meta.transform([analysis.meta for analysis in analyses]),
        )

    @property
    def text_columns(self) -> int:
        """Number of leading columns that come from the text n-grams (the rest is evidence features)."""
        return len(self.words.vocabulary_) + len(self.chars.vocabulary_)

    @staticmethod
    def _stack(words, chars, meta) -> sparse.csr_matrix:
        return sparse.hstack([words, chars, meta.astype(np.float64) * META_WEIGHT], format="csr")
