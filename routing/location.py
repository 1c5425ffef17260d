"""Find the kabupaten/kota (and kecamatan/desa) a message names, with aliases and spelling slack.

A token index over the 1,293 NTB region names (Kemendagri 2025, shipped in routing/data/wilayah) replaces
one regular expression per name: lookup costs microseconds per text. Names that are ordinary words
("alas", "lembar", "sampe") count as a place only after a cue such as "desa" or "kec".
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from routing.tokens import Token, prepare, squeeze_repeats, tokenize
from routing.words import common_words, deletes, looks_derived, within_one_typo

WILAYAH_CSV = Path(__file__).parent / "data" / "wilayah" / "ntb_wilayah.csv"

KABKOTA, KECAMATAN, DESA = "kabupaten_kota", "kecamatan", "desa_kelurahan"
_LEVEL_WEIGHT = {KABKOTA: 3.0, "landmark": 2.0, KECAMATAN: 2.0, DESA: 1.0}
_MIN_FUZZY_LENGTH = 6

# Names citizens use for a kabupaten/kota besides its official one (capitals, abbreviations).
KABKOTA_ALIASES: dict[str, tuple[str, ...]] = {
    "52.01": ("lobar", "gerung", "lombok brt"),
    "52.02": ("loteng", "praya", "lombok tngh"),
    "52.03": ("lotim", "selong", "lombok tmr"),
    "52.04": ("sumbawa besar", "sbw", "samawa"),
    "52.05": ("dompu",),
    "52.06": ("kab bima", "kabupaten bima", "pemkab bima", "bupati bima", "woha", "mbojo"),
    "52.07": ("ksb", "taliwang"),
    "52.08": ("klu", "tanjung"),
    "52.71": ("mtr", "kota mataram", "mataram"),
    "52.72": ("kota bima", "raba", "bima kota", "pemkot bima", "walikota bima", "wali kota bima"),
}
# Landmarks citizens name instead of an administrative unit (counted like a kecamatan).
LANDMARKS: dict[str, tuple[str, ...]] = {
    "52.01": ("kebon kongok", "pelabuhan lembar", "bypass bil"),
    "52.02": ("mandalika", "kuta mandalika", "sirkuit mandalika", "bandara lombok", "bandara internasional lombok",
              "bandara zam", "bil", "pantai seger", "tanjung aan", "selong belanak"),
    "52.03": ("pelabuhan kayangan", "labuhan kayangan", "gili kondo"),
    "52.04": ("pulau moyo",),
    "52.07": ("pelabuhan poto tano", "pelabuhan pototano"),
    "52.08": ("gili trawangan", "gili meno", "gili air", "gili t", "teluk nare", "pelabuhan bangsal"),
    "52.71": ("udayana", "terminal mandalika", "taman sangkareang", "islamic center"),
    "52.72": ("amahami", "pelabuhan bima", "lawata"),
}
LANDMARK = "landmark"
_SENTENCE_BREAKS = frozenset({""})
_DESA_CUES = frozenset({"desa", "ds", "kel", "kelurahan", "dusun", "dsn", "kampung", "kp", "lingkungan", "lurah"})
# Words after which an ordinary-looking word is read as a kecamatan: "puskesmas Alas", "di Lembar".
_KECAMATAN_CUES = _DESA_CUES | frozenset({
    "kec", "kecamatan", "kcmtn", "camat", "di", "ke", "dari", "dr", "pelabuhan", "puskesmas", "pasar", "polsek",
    "sdn", "smpn", "sman", "smkn", "mts", "kua", "daerah", "wilayah", "warga", "arah", "perumahan",
})


@dataclass(frozen=True)
class Region:
    """One row of the Kemendagri list."""

    code: str
    level: str
    name: str
    parent: str | None


@dataclass(frozen=True)
class _Candidate:
    code: str
    level: str
    gated: bool
    weak: bool = False
    weight: float | None = None


# A place mention: (first token, end token, the regions it may mean).
Span = tuple[int, int, list[_Candidate]]


@dataclass(frozen=True)
class Mention:
    """A span of the text read as a place name and the regions it can mean."""

    surface: str
    start: int
    end: int
    codes: tuple[str, ...]


@dataclass(frozen=True)
class LocationMatch:
    """The kab/kota a text is about, with the kecamatan and desa where named."""

    code: str
    name: str
    kecamatan: Region | None = None
    desa: Region | None = None
    mentions: tuple[Mention, ...] = field(default=())

    def to_dict(self) -> dict:
        """Names and codes of what was found, for the ticket JSON."""
        return {
            "kabkota": {"code": self.code, "name": self.name},
            "kecamatan": {"code": self.kecamatan.code, "name": self.kecamatan.name} if self.kecamatan else None,
            "desa": {"code": self.desa.code, "name": self.desa.name} if self.desa else None,
            "mentions": [mention.surface for mention in self.mentions],
        }


class Gazetteer:
    """Token index of NTB region names plus kab/kota aliases."""

    def __init__(self, regions: list[Region]) -> None:
        self.regions = {region.code: region for region in regions}
        self._entries: dict[tuple[str, ...], list[_Candidate]] = defaultdict(list)
        common = common_words()
        for region in regions:
            if region.level == "provinsi":
                continue
            for key in self._name_keys(region):
                gated = region.level != KABKOTA and all(word in common or looks_derived(word) for word in key)
                self._entries[key].append(_Candidate(region.code, region.level, gated))
        for code, aliases in KABKOTA_ALIASES.items():
            for alias in aliases:
                key = tuple(alias.split())
                self._entries[key] = [c for c in self._entries[key] if c.level != KABKOTA or c.code != code]
                self._entries[key].insert(0, _Candidate(code, KABKOTA, False))
        # Plain "Bima" usually means the kabupaten, but kelurahan of Kota Bima named next to it win.
        self._entries[("bima",)] = [_Candidate("52.06", KABKOTA, False, weight=1.6),
                                    _Candidate("52.72", KABKOTA, False, weight=1.0)]
        for code, landmarks in LANDMARKS.items():
            for landmark in landmarks:
                self._entries[tuple(landmark.split())].insert(0, _Candidate(code, LANDMARK, False))
        self._max_words = max(len(key) for key in self._entries)
        self._vocabulary = {word for key in self._entries for word in key}
        self._fuzzy: dict[str, set[str]] = defaultdict(set)
        for word in self._vocabulary:
            if len(word) >= _MIN_FUZZY_LENGTH and word.isalpha():
                self._fuzzy[word].add(word)
                for variant in deletes(word):
                    self._fuzzy[variant].add(word)
        self._common = common

    @staticmethod
    def _name_keys(region: Region) -> set[tuple[str, ...]]:
        name = region.name.lower().replace("'", "")
        if region.level == KABKOTA:
            for prefix in ("kabupaten ", "kota "):
                if name.startswith(prefix) and name != "kota bima":
                    name = name[len(prefix) :]
        words = tuple(name.replace("-", " ").split())
        keys = {words}
        if len(words) > 1:
            keys.add(("".join(words),))
        return keys

    def _canonical(self, word: str) -> tuple[str, bool]:
        """The gazetteer word a token stands for, and whether it took a spelling correction."""
        word = squeeze_repeats(word)
        if word in self._vocabulary or len(word) < _MIN_FUZZY_LENGTH - 1 or word in self._common:
            return word, False
        options = set(self._fuzzy.get(word, ()))
        for variant in deletes(word):
            options |= self._fuzzy.get(variant, set())
        options = {option for option in options if within_one_typo(word, option)}
        if len(options) != 1 or looks_derived(word, broad=True):
            return word, False
        return options.pop(), True

    def mentions(self, tokens: list[Token]) -> list[Span]:
        """Longest-match place spans as (first token, end token, candidates allowed by context)."""
        canonical = [self._canonical(token.text) for token in tokens]
        words = [word for word, _ in canonical]
        found = []
        index = 0
        while index < len(words):
            match = None
            for length in range(min(self._max_words, len(words) - index), 0, -1):
                candidates = self._entries.get(tuple(words[index : index + length]))
                if candidates:
                    match = (length, candidates)
                    break
            if (match is None or match[0] == 1) and index + 1 < len(words):
                joined = self._entries.get((words[index] + words[index + 1],))
                if joined:
                    match = (2, joined)
            if match is None:
                index += 1
                continue
            length, candidates = match
            cue = words[index - 1] if index else ""
            corrected = any(fixed for _, fixed in canonical[index : index + length])
            capitalized = all(token.capitalized for token in tokens[index : index + length])
            allowed = [
                c if not c.gated or self._cue_allows(cue, c.level, capitalized, index) else replace(c, weak=True)
                for c in candidates
                if not (corrected and c.level == DESA and cue not in _DESA_CUES)
            ]
            if allowed:
                found.append((index, index + length, allowed))
            index += length
        return found

    @staticmethod
    def _cue_allows(cue: str, level: str, capitalized: bool, index: int) -> bool:
        """A name made of ordinary words counts after a cue word, or when capitalised (desa: mid-sentence)."""
        if level == DESA:
            return cue in _DESA_CUES or (capitalized and index > 0 and cue not in _SENTENCE_BREAKS)
        return cue in _KECAMATAN_CUES or capitalized

    def protected_indexes(self, tokens: list[Token], spans: list[Span] | None = None) -> set[int]:
        """Token positions that belong to a place name (kept verbatim by the normaliser)."""
        return {
            i
            for start, end, candidates in (self.mentions(tokens) if spans is None else spans)
            if any(not candidate.weak for candidate in candidates)
            for i in range(start, end)
        }

    def find(self, text: str) -> LocationMatch | None:
        """Resolve the mentions of a text to one kab/kota, or None when absent or undecidable."""
        tokens = tokenize(prepare(text))
        return self.resolve(tokens, self.mentions(tokens))

    def resolve(self, tokens: list[Token], spans: list[Span]) -> LocationMatch | None:
        """One kab/kota (with kecamatan/desa) from the mentions found in tokens."""
        if not spans:
            return None
        scores: dict[str, float] = defaultdict(float)
        strong = {c.code[:5] for _, _, candidates in spans for c in candidates if not c.weak}
        spans = [
            (start, end, kept)
            for start, end, candidates in spans
            if (kept := [c for c in candidates if not c.weak or c.code[:5] in strong])
        ]
        if not spans:
            return None
        for _, _, candidates in spans:
            best_per_kab: dict[str, float] = {}
            for candidate in candidates:
                kab = candidate.code[:5]
                weight = candidate.weight if candidate.weight is not None else _LEVEL_WEIGHT[candidate.level]
                best_per_kab[kab] = max(best_per_kab.get(kab, 0.0), weight)
            for kab, weight in best_per_kab.items():
                scores[kab] += weight / len(best_per_kab)
        ranked = sorted(scores.items(), key=lambda item: -item[1])
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            return None
        kab = ranked[0][0]
        kecamatan = self._pick(spans, kab, KECAMATAN, None)
        desa = self._pick(spans, kab, DESA, kecamatan.code if kecamatan else None)
        if desa is not None and kecamatan is None:
            kecamatan = self.regions.get(desa.parent or "")
        mentions = tuple(
            Mention(
                surface=" ".join(token.text for token in tokens[start:end]),
                start=tokens[start].start,
                end=tokens[end - 1].end,
                codes=tuple(c.code for c in candidates),
            )
            for start, end, candidates in spans
        )
        return LocationMatch(kab, self.regions[kab].name, kecamatan, desa, mentions)

    def _pick(self, spans: list[Span], kab: str, level: str, within: str | None) -> Region | None:
        options = [
            self.regions[c.code]
            for _, _, candidates in spans
            for c in candidates
            if c.level == level and c.code.startswith(kab + ".")
        ]
        preferred = [region for region in options if within and region.code.startswith(within + ".")]
        chosen = preferred or options
        return chosen[0] if chosen else None


def load_regions(path: Path = WILAYAH_CSV) -> list[Region]:
    """Rows of the shipped Kemendagri CSV."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [
            Region(row["kode"], row["tingkat"], row["nama"], row["kode_induk"] or None)
            for row in csv.DictReader(handle)
        ]


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """The process-wide gazetteer (built once, ~50 ms)."""
    return Gazetteer(load_regions())


def find_location(text: str) -> LocationMatch | None:
    """The kab/kota (with kecamatan/desa where named) a citizen's text mentions, or None."""
    return gazetteer().find(text)
