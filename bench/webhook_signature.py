"""CPU cost of refusing a 4 MB non-ASCII webhook body with a wrong signature: the character-by-character
escaping the webhook used to do (the baseline, kept here) against ``webhooks.signature_matches``, in the same
process, on the same bodies, with one secret and with two (during a rotation).

Bodies (each just under 4 MiB, the default WEBHOOK_MAX_BODY_BYTES):
  messenger    a Messenger delivery whose text mixes Indonesian, accents, CJK and emoji (JSON, unescaped)
  cjk          one long run of 3-byte characters
  alternating  ASCII and non-ASCII characters alternating: the most runs, the worst case for run-wise escaping

Ratio = old / new CPU seconds (higher is better). Run: .venv/bin/python bench/webhook_signature.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webhooks import signature_matches  # noqa: E402

LIMIT = 4 * 1024 * 1024
WRONG = "sha256=" + "ab" * 32


def old_escape(body: bytes) -> bytes | None:
    """The escaping as it was: one Python step per character."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    out = []
    for ch in text:
        code = ord(ch)
        if code < 0x80:
            out.append(ch)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    return "".join(out).encode("ascii")


def old_signature_matches(secrets: tuple[str, ...], body: bytes, header: str) -> bool:
    """The check as it was: the escaped form built for every non-ASCII body, before any comparison."""
    expected = header.encode("utf-8", "replace")
    candidates = [body]
    if not body.isascii():
        escaped = old_escape(body)
        if escaped is not None:
            candidates.append(escaped)
    matched = False
    for secret in secrets:
        for candidate in candidates:
            digest = "sha256=" + hmac.new(secret.encode(), candidate, hashlib.sha256).hexdigest()
            matched |= hmac.compare_digest(digest.encode(), expected)
    return matched


def fill(unit: str, prefix: bytes = b"", suffix: bytes = b"") -> bytes:
    """``unit`` repeated to just under LIMIT bytes, between ``prefix`` and ``suffix``."""
    room = LIMIT - len(prefix) - len(suffix) - 64
    encoded = unit.encode()
    return prefix + encoded * (room // len(encoded)) + suffix


def bodies() -> dict[str, bytes]:
    text_unit = "Jalan rusak di Praya 🙏 ndéq bagus, lampu mati 中 sejak Senin. "
    head = json.dumps({"object": "page", "entry": [{"id": "104000000000001", "messaging": [
        {"sender": {"id": "65"}, "message": {"mid": "m_1", "text": "@"}}]}]}, ensure_ascii=False).encode()
    before, after = head.split(b"@")
    return {
        "messenger": fill(text_unit, before, after),
        "cjk": fill("中", b'{"t":"', b'"}'),
        "alternating": fill("aé", b'{"t":"', b'"}'),
    }


Check = Callable[[tuple[str, ...], bytes, str], bool]


def cpu_seconds(check: Check, secrets: tuple[str, ...], body: bytes, repeat: int) -> float:
    """Median CPU time of one check over ``repeat`` runs; every run must refuse the wrong signature."""
    samples = []
    for _ in range(repeat):
        started = time.process_time()
        assert check(secrets, body, WRONG) is False
        samples.append(time.process_time() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    results = []
    for name, body in bodies().items():
        for secrets in (("app-secret",), ("app-secret", "previous-secret")):
            old = cpu_seconds(old_signature_matches, secrets, body, args.repeat)
            new = cpu_seconds(signature_matches, secrets, body, args.repeat)
            results.append({"body": name, "bytes": len(body), "secrets": len(secrets), "old_s": round(old, 4),
                            "new_s": round(new, 4), "ratio": round(old / new, 1)})
    if args.json:
        print(json.dumps({"python": platform.python_version(), "repeat": args.repeat, "results": results}))
        return
    print(f"Python {platform.python_version()}, median CPU seconds of {args.repeat} runs, wrong signature")
    print(f"{'body':<12} {'bytes':>9} {'secrets':>7} {'old s':>8} {'new s':>8} {'old/new':>8}")
    for r in results:
        print(f"{r['body']:<12} {r['bytes']:>9} {r['secrets']:>7} {r['old_s']:>8.3f} {r['new_s']:>8.3f} "
              f"{r['ratio']:>8.1f}")


if __name__ == "__main__":
    main()
