"""Text normalisation for citizen messages: informal Indonesian, Sasak, typos, emoji.

Place names are protected: the location finder marks their tokens first and the slang map never touches
them (a slang rule once rewrote the village "Sampe" into "sampai", and "smp" is a junior high school here,
never "sampai").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_URL = re.compile(r"(?:https?://|www\.)\S+")
_TAG = re.compile(r"@[\w.]+(?:\s+[A-Z][\w.]*){0,2}")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_REPEAT = re.compile(r"([a-z])\1{2,}")
_POSITIVE_EMOJI = set("🙏👍❤💕💖😍🥰👏😊🤗💪🌹✨😁😀🙂☺👌🫶💯")
_NEGATIVE_EMOJI = set("😡😠😤😭😢💔😞😩😫🤬👎😣😥😰😱🆘⚠🔥")
_STEM_EXEMPT_LENGTH = 4

# Informal spellings, abbreviations and Sasak/Mbojo/Samawa words mapped to standard Indonesian.
# "smp", "sd", "sma" and place-like tokens are deliberately absent.
SLANG: dict[str, str] = {
    "yg": "yang", "yng": "yang", "gk": "tidak", "gak": "tidak", "ga": "tidak", "nggak": "tidak",
    "ngga": "tidak", "enggak": "tidak", "tdk": "tidak", "tak": "tidak", "g": "tidak", "kagak": "tidak",
    "ndak": "tidak", "ndek": "tidak", "nda": "tidak", "endek": "tidak", "sy": "saya", "sya": "saya",
    "aku": "saya", "gw": "saya", "gue": "saya", "tiang": "saya", "aq": "saya", "ak": "saya",
    "bpk": "bapak", "bp": "bapak", "pak": "bapak", "amaq": "bapak", "bu": "ibu",
    "inaq": "ibu", "ina": "ibu", "tlg": "tolong", "tolongin": "tolong", "mhn": "mohon", "mohoon": "mohon",
    "dr": "dari", "blm": "belum", "blum": "belum", "sdh": "sudah", "udh": "sudah", "udah": "sudah",
    "dah": "sudah", "sudh": "sudah", "jln": "jalan", "jl": "jalan", "jaln": "jalan", "kmrn": "kemarin",
    "kemaren": "kemarin", "krn": "karena", "karna": "karena", "krna": "karena", "dgn": "dengan",
    "dg": "dengan", "utk": "untuk", "untk": "untuk", "bgt": "banget", "bngt": "banget", "lg": "lagi",
    "lgi": "lagi", "org": "orang", "tp": "tapi", "tpi": "tapi", "sm": "sama", "aja": "saja", "aj": "saja",
    "sja": "saja", "skrg": "sekarang", "skg": "sekarang", "skrang": "sekarang", "sekarng": "sekarang",
    "gmn": "bagaimana", "gimana": "bagaimana", "gmna": "bagaimana", "knp": "kenapa", "knapa": "kenapa",
    "napa": "kenapa", "kpn": "kapan", "kapn": "kapan", "bkn": "bukan", "bukn": "bukan", "jg": "juga",
    "jga": "juga", "dlm": "dalam", "pd": "pada", "sampe": "sampai", "ampe": "sampai",
    "smpai": "sampai", "hrs": "harus", "msh": "masih", "masi": "masih", "bs": "bisa", "bsa": "bisa",
    "sdg": "sedang", "lagi2": "lagi", "kl": "kalau", "klo": "kalau", "kalo": "kalau", "lamun": "kalau",
    "trs": "terus", "trus": "terus", "bbrp": "beberapa", "hr": "hari", "hri": "hari", "thn": "tahun",
    "bln": "bulan", "mgg": "minggu", "mnggu": "minggu", "jam2": "jam", "tgl": "tanggal", "ttg": "tentang",
    "spt": "seperti", "kyk": "kayak", "kek": "kayak", "cm": "cuma", "cuman": "cuma", "doang": "saja",
    "mksh": "terima kasih", "makasih": "terima kasih", "makasi": "terima kasih", "trims": "terima kasih",
    "trmksh": "terima kasih", "tks": "terima kasih", "thx": "terima kasih", "thanks": "terima kasih",
    "tq": "terima kasih", "tengkyu": "terima kasih", "tampiasih": "terima kasih", "tampi": "terima kasih",
    "amiin": "amin", "aamiin": "amin", "aamin": "amin", "amien": "amin", "aminn": "amin",
    "mele": "mau", "pengen": "ingin", "pgn": "ingin", "side": "anda", "kamu": "anda",
    "lu": "anda", "epe": "punya", "kanak": "anak", "anak2": "anak", "bale": "rumah", "rmh": "rumah",
    "gati": "sangat", "bgtt": "banget", "beleq": "besar", "solah": "bagus", "maeh": "ayo", "sai": "siapa",
    "gen": "akan", "mbe": "mana", "ape": "apa", "apa2": "apa", "ndekman": "belum", "ndeman": "belum",
    "tu": "itu", "tuh": "itu", "ni": "ini", "nih": "ini", "gini": "begini", "gitu": "begitu",
    "bener": "benar", "bnr": "benar", "bner": "benar", "ancur": "hancur", "rusk": "rusak", "rsk": "rusak",
    "ruksak": "rusak", "bolong": "berlubang", "bolong2": "berlubang", "lubang2": "lubang", "mati2": "mati",
    "pdhl": "padahal", "pdahal": "padahal", "dpt": "dapat", "dapet": "dapat", "liat": "lihat",
    "lht": "lihat", "tau": "tahu", "tw": "tahu", "emg": "memang", "emang": "memang", "mmg": "memang",
    "bnyk": "banyak", "byk": "banyak", "sgt": "sangat", "skali": "sekali", "bgmn": "bagaimana",
    "pemprov": "pemerintah provinsi", "pemkab": "pemerintah kabupaten", "pemkot": "pemerintah kota",
    "pemda": "pemerintah daerah", "gub": "gubernur", "gubnur": "gubernur", "dll": "dan lain lain",
    "dsb": "dan sebagainya", "ok": "oke", "okey": "oke", "okay": "oke", "mantul": "mantap",
    "mantab": "mantap", "mntp": "mantap", "sehat2": "sehat",
    "smoga": "semoga", "moga": "semoga", "mdh2an": "mudah mudahan", "mudah2an": "mudah mudahan",
    "sllu": "selalu", "slalu": "selalu", "slm": "salam", "ass": "assalamualaikum",
    "askum": "assalamualaikum", "wr": "warahmatullahi",
    "wb": "wabarakatuh", "min": "admin", "mimin": "admin", "adm": "admin", "plis": "tolong",
    "pliss": "tolong", "please": "tolong", "pls": "tolong", "sblm": "sebelum", "stlh": "setelah",
    "sbg": "sebagai", "sdkt": "sedikit", "dikit": "sedikit", "gede": "besar", "gde": "besar",
    "brp": "berapa", "brapa": "berapa", "lbh": "lebih", "kpd": "kepada", "ttp": "tetap", "tetep": "tetap",
    "rb": "ribu", "rbu": "ribu", "jt": "juta", "jta": "juta", "mlm": "malam", "pgi": "pagi", "sore2": "sore",
    "sm2": "sama sama", "ane": "saya", "ente": "anda", "kalian": "anda", "dy": "dia",
}

# Short or very common words that must never be read as a place name without a cue like "desa".
EXTRA_COMMON_WORDS = frozenset({
    "sampe", "bolo", "kilo", "belo", "baru", "gapuk", "dasan", "tengah", "jati",
})


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


def _normal_word(word: str) -> str:
    if word.isdigit():
        return "number"
    squeezed = squeeze_repeats(word)
    if squeezed.endswith("2") and squeezed[:-1].isalpha():
        squeezed = squeezed[:-1]
    return SLANG.get(squeezed, squeezed)


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Sastrawi's root-word list plus slang keys: words too common to be taken as a place on their own."""
    import Sastrawi

    path = Path(Sastrawi.__file__).parent / "Stemmer" / "data" / "kata-dasar.txt"
    words = {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    return frozenset(words | set(SLANG) | EXTRA_COMMON_WORDS)


_PREFIXES = ("meng", "peng", "mem", "men", "pem", "pen", "per", "ber", "me", "pe")
_SUFFIXES = ("kan", "an")
_BROAD_PREFIXES = (*_PREFIXES, "ter", "se", "ke", "di")
_BROAD_SUFFIXES = ("nya", "kan", "an", "i")


def looks_derived(word: str, *, broad: bool = False) -> bool:
    """Cheap check for an affixed ordinary word ("pemenang", "pajangan"): a root plus common affixes.

    Narrow by default (gating place names that double as words must not gate Kediri or Sekotong); broad
    (also se-, ke-, di-, ter-, -nya, -i) before a spelling correction, so "sebatang" never becomes "Sebasang".
    Much faster than Sastrawi, which would cost ~1 s to load inside a worker.
    """
    roots = common_words()
    prefixes, suffixes = (_BROAD_PREFIXES, _BROAD_SUFFIXES) if broad else (_PREFIXES, _SUFFIXES)
    candidates = {word}
    for suffix in suffixes:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            candidates.add(word[: -len(suffix)])
    for candidate in list(candidates):
        for prefix in prefixes:
            if candidate.startswith(prefix) and len(candidate) - len(prefix) >= 4:
                rest = candidate[len(prefix) :]
                candidates.update({rest, "p" + rest, "t" + rest, "k" + rest, "s" + rest})
    candidates.discard(word)
    return any(candidate in roots for candidate in candidates)


class Stemmer:
    """Sastrawi stemming with a per-word cache: Sastrawi is slow per call but words repeat a lot."""

    def __init__(self) -> None:
        from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

        self._stemmer = StemmerFactory().create_stemmer()
        self._cache: dict[str, str] = {}

    def stem(self, word: str) -> str:
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
    from routing.location import gazetteer

    tokens = tokenize(prepare(text))
    protected = gazetteer().protected_indexes(tokens)
    return " ".join(normalize_tokens(tokens, protected, stem=stem))
