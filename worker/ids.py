"""Message ids: ULIDs (globally unique, URL-safe, time-sortable)."""

from __future__ import annotations

import functools
import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every pair of digits, indexed by its 10 bits: 13 lookups write an id instead of 26.
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)
_SHIFTS = tuple(range(120, -1, -10))  # the 130 bits of 26 digits, 10 at a time


def new_id() -> str:
    """A 26-character Crockford base32 ULID: 48 bits of milliseconds, 80 random bits."""
    return encode(time.time_ns() // 1_000_000, os.urandom(10))


def new_ids(count: int) -> list[str]:
    """``count`` ULIDs of this millisecond, with one clock read and one call for randomness."""
    return encode_many(time.time_ns() // 1_000_000, os.urandom(10 * count))


def encode_many(ms: int, randomness: bytes) -> list[str]:
    """``encode(ms, r)`` for each 10 bytes ``r`` of ``randomness``, in order."""
    # The first 10 digits are exactly the 2 zero bits and the 48 of the time, so they are
    # shared by every id of the call; only the 16 random digits (8 pairs) are written per id,
    # unrolled: this runs once per message on the gateway's hot path.
    head, p = _time_digits(ms), _PAIRS
    out = []
    for i in range(0, len(randomness) - 9, 10):
        v = int.from_bytes(randomness[i:i + 10], "big")
        out.append(head + p[v >> 70 & 1023] + p[v >> 60 & 1023] + p[v >> 50 & 1023]
                   + p[v >> 40 & 1023] + p[v >> 30 & 1023] + p[v >> 20 & 1023]
                   + p[v >> 10 & 1023] + p[v & 1023])
    return out


@functools.lru_cache(maxsize=2)
def _time_digits(ms: int) -> str:
    return encode(ms, bytes(10))[:10]


def encode(ms: int, randomness: bytes) -> str:
    """The ULID of a millisecond timestamp (below 2**48) and 10 random bytes."""
    value = ms << 80 | int.from_bytes(randomness, "big")
    return "".join([_PAIRS[value >> shift & 1023] for shift in _SHIFTS])


def message_of(text: str) -> str | None:
    """The message id ``text`` names: an id we issued, or the id of one part of a message an
    SMPP client concatenated itself (``{id}-{part}``); None when it is neither."""
    head, dash, part = text.partition("-")
    if dash and not (part.isdigit() and part.isascii() and len(part) <= 3):
        return None
    return head if is_id(head) else None


def is_id(text: str) -> bool:
    """Whether ``text`` looks like an id we issued (cheap check before touching Redis)."""
    return len(text) == 26 and all(c in _ALPHABET for c in text)
