"""Message ids: ULIDs (globally unique, URL-safe, time-sortable)."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id() -> str:
    """A 26-character Crockford base32 ULID: 48 bits of milliseconds, 80 random bits."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    out = []
    for _ in range(26):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def is_id(text: str) -> bool:
    """Whether ``text`` looks like an id we issued (cheap check before touching Redis)."""
    return len(text) == 26 and all(c in _ALPHABET for c in text)
