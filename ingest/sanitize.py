"""Making decoded payload values safe to store, before any parser sees them.

Python's json accepts what no database column does: an escaped lone surrogate (``\\ud800``) cannot be
encoded as UTF-8 by any driver, PostgreSQL refuses NUL in text and the ``NaN``/``Infinity`` literals (also
``1e999``, which decodes to infinity) in a JSON column. One such value used to fail a whole batched delivery.
Text is repaired (each lone surrogate and each NUL becomes U+FFFD, so the citizen's complaint survives); a
number that is not finite cannot be repaired without inventing a value, so the item holding it is malformed.
Everything is pure and iterative: a payload nested as deeply as json allows never exhausts the stack.
"""

from __future__ import annotations

import math
import re
from typing import Any

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Facebook object ids: digits, or page-scoped digits_digits. ASCII only (``\d`` would take any script's digits).
FACEBOOK_ID = re.compile(r"[0-9]{1,32}(?:_[0-9]{1,32})?")
NON_FINITE_REASON = "number that is not finite (NaN or Infinity) in the item"


def clean_text(text: str) -> str:
    """The text with each lone surrogate and NUL replaced by U+FFFD; valid text comes back unchanged.

    ``json.loads`` leaves an escaped surrogate pair as one astral character, so every surrogate still present
    in a decoded string is a lone one.
    """
    return _UNSTORABLE.sub(REPLACEMENT, text) if _UNSTORABLE.search(text) else text


def is_facebook_id(value: str) -> bool:
    """True for ids shaped like Facebook's (``123`` or ``123_456``); anything else never reaches a ticket."""
    return FACEBOOK_ID.fullmatch(value) is not None


def scrub(value: Any) -> tuple[Any, bool]:
    """A JSON-safe copy of a decoded value (texts and keys cleaned, non-finite numbers as null) and whether
    a non-finite number was found."""
    found = False

    def leaf(item: Any) -> Any:
        nonlocal found
        if isinstance(item, str):
            return clean_text(item)
        if isinstance(item, float) and not math.isfinite(item):
            found = True
            return None
        return item

    if not isinstance(value, dict | list):
        return leaf(value), found
    root: Any = {} if isinstance(value, dict) else []
    stack: list[tuple[Any, Any]] = [(value, root)]
    while stack:
        source, target = stack.pop()
        pairs = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in pairs:
            if isinstance(item, dict | list):
                copy: Any = {} if isinstance(item, dict) else []
                stack.append((item, copy))
            else:
                copy = leaf(item)
            if isinstance(target, dict):
                target[leaf(key)] = copy
            else:
                target.append(copy)
    return root, found
