"""What is known about single words, shared by normalisation and the place finder.

The slang map, the words too ordinary to be a place on their own, a cheap affix check and one-typo
matching. Both the normaliser (which rewrites words) and the gazetteer (which must not mistake a word for a
village) read these, so they live below both.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import Sastrawi

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


_PREFIXES = ("meng", "peng", "mem", "men", "pem", "pen", "per", "ber", "me", "pe")
_SUFFIXES = ("kan", "an")
_BROAD_PREFIXES = (*_PREFIXES, "ter", "se", "ke", "di")
_BROAD_SUFFIXES = ("nya", "kan", "an", "i")


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Sastrawi's root-word list plus slang keys: words too common to be taken as a place on their own."""
    path = Path(Sastrawi.__file__).parent / "Stemmer" / "data" / "kata-dasar.txt"
    words = {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    return frozenset(words | set(SLANG) | EXTRA_COMMON_WORDS)


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


def within_one_typo(left: str, right: str) -> bool:
    """True when the words are equal or one insertion, deletion, substitution or swap apart (Damerau 1)."""
    if left == right:
        return True
    if abs(len(left) - len(right)) > 1:
        return False
    if len(left) == len(right):
        diffs = [i for i, (a, b) in enumerate(zip(left, right, strict=True)) if a != b]
        if len(diffs) == 1:
            return True
        return len(diffs) == 2 and diffs[1] == diffs[0] + 1 and left[diffs[0]] == right[diffs[1]] and (
            left[diffs[1]] == right[diffs[0]]
        )
    shorter, longer = sorted((left, right), key=len)
    return any(longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer)))


def deletes(word: str) -> set[str]:
    """The word with one letter dropped, in every position (keys of a symmetric-delete typo index)."""
    return {word[:i] + word[i + 1 :] for i in range(len(word))}
