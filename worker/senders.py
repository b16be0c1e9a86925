"""A message's sender (its submit_sm source_addr): what one may be, who may use which, and the
TON/NPI it goes out with. Pure functions, no I/O.

A sender is alphanumeric (1 to 11 characters of the GSM 7-bit default alphabet that ASCII has,
not all digits) or a number (up to 15 digits, optionally after a '+'). Lists of senders (an API
key's or an SMPP user's allowed senders, a route's ``senders``) hold exact senders, digit
prefixes ending in '*' (``"4470*"``), or ``"*"`` (any sender). A number matches with or without
its '+'; an alphanumeric sender matches exactly (case counts: "ACME" is not "Acme").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiosmpplib.codec import GSM_BASIC_ENCODE_MAP

ANY = "*"
MAX_ALPHANUMERIC = 11  # GSM 03.40: 11 characters of the default alphabet in 10 octets
MAX_DIGITS = 15  # E.164
SHORT_CODE_DIGITS = 8  # a number of at most this many digits is a short code, not E.164
# The GSM 7-bit default alphabet's printable characters that ASCII has (the extension table's
# cost two septets each), without ',' (lists of senders are stored comma separated) and '*'
# (in a list it means a prefix, or any sender).
_ALPHABET = frozenset(c for c in GSM_BASIC_ENCODE_MAP
                      if c.isascii() and c.isprintable()) - {",", "*"}

TON_INTERNATIONAL, TON_NETWORK_SPECIFIC, TON_ALPHANUMERIC = 1, 3, 5
NPI_UNKNOWN, NPI_ISDN = 0, 1


class BadSender(ValueError):
    """A sender, or an entry of a list of senders, that cannot be one (the text says why)."""


def sender_problem(sender: str) -> str:
    """Why ``sender`` cannot be a message's sender ('' if it can)."""
    if _is_number(sender):
        digits = sender.removeprefix("+")
        if len(digits) > MAX_DIGITS:
            return f"sender '{sender}' has {len(digits)} digits; a number has at most 15"
        return ""
    if not sender or len(sender) > MAX_ALPHANUMERIC or not set(sender) <= _ALPHABET:
        return (f"sender '{sender}' is not a sender: 1 to 11 letters, digits, spaces or GSM "
                "punctuation (no ',' or '*'), or a number of up to 15 digits with an optional '+'")
    if sender != sender.strip():
        return f"sender '{sender}' must not start or end with a space"
    return ""


def check_entries(entries: Iterable[str]) -> tuple[str, ...]:
    """A list of senders as given (exact senders, digit prefixes ending in '*', or '*'),
    without duplicates, or :class:`BadSender` naming the first entry that is none."""
    out: dict[str, None] = {}
    for entry in entries:
        if entry == ANY:
            pass
        elif entry.endswith(ANY):
            digits = entry[:-1].removeprefix("+")
            if not (digits.isascii() and digits.isdigit()) or len(digits) >= MAX_DIGITS:
                raise BadSender(f"'{entry}' is not a sender: a prefix is digits ending in '*' "
                                "(e.g. '4470*')")
        elif problem := sender_problem(entry):
            raise BadSender(problem)
        out.setdefault(entry, None)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Senders:
    """A compiled list of senders: :meth:`matches` costs a set lookup and a ``startswith``."""

    entries: tuple[str, ...] = ()
    any: bool = False
    exact: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()  # digits, no '+'

    @classmethod
    def of(cls, entries: Iterable[str]) -> Senders:
        """Compile ``entries`` (already checked: :func:`check_entries`)."""
        given = tuple(entries)
        exact = frozenset(_key(e) for e in given if not e.endswith(ANY))
        prefixes = tuple(e[:-1].removeprefix("+") for e in given if e.endswith(ANY) and e != ANY)
        return cls(given, ANY in given, exact, prefixes)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def matches(self, sender: str) -> bool:
        """Whether ``sender`` (a valid one) is in the list."""
        if self.any or _key(sender) in self.exact:
            return True
        return bool(self.prefixes) and _is_number(sender) and \
            sender.removeprefix("+").startswith(self.prefixes)

    def covers(self, other: Senders) -> bool:
        """Whether every sender ``other`` matches is matched here too (conservative: True only
        when it is sure)."""
        if self.any:
            return True
        if other.any:
            return False
        return (all(self.matches(e) for e in other.exact)
                and all(p.startswith(self.prefixes) for p in other.prefixes))


def parse_stored(text: str | None) -> Senders:
    """A list of senders as stored in a key's or SMPP user's record (comma separated; absent
    or empty: none)."""
    return Senders.of(e for e in (text or "").split(",") if e)


def stored(senders: Senders) -> str:
    """The record's form of ``senders`` (entries never hold a ',')."""
    return ",".join(senders.entries)


@dataclass(frozen=True, slots=True)
class Address:
    """A source address as submit_sm carries it."""

    addr: str
    ton: int
    npi: int


def address(sender: str, channel_addr: str, channel_ton: int, channel_npi: int) -> Address:
    """The submit_sm source address of ``sender`` (a valid one). By its kind, as Kannel's
    autodetect-addr does: alphanumeric TON 5/NPI 0; '+' and digits, or more than
    :data:`SHORT_CODE_DIGITS` digits, international (TON 1/NPI 1, without the '+'); a short
    code TON 3 (network specific)/NPI 0. When the channel's own ``source_addr`` is of the same
    kind, its configured ``source_ton``/``source_npi`` are used instead: the operator set them
    for what its SMSC expects of that kind."""
    kind = _kind(sender)
    if kind == _kind(channel_addr):
        return Address(sender.removeprefix("+"), channel_ton, channel_npi)
    if kind == "alpha":
        return Address(sender, TON_ALPHANUMERIC, NPI_UNKNOWN)
    if kind == "short":
        return Address(sender, TON_NETWORK_SPECIFIC, NPI_UNKNOWN)
    return Address(sender.removeprefix("+"), TON_INTERNATIONAL, NPI_ISDN)


def _kind(sender: str) -> str:
    if not _is_number(sender):
        return "alpha"
    if sender.startswith("+") or len(sender) > SHORT_CODE_DIGITS:
        return "international"
    return "short"


def _is_number(sender: str) -> bool:
    digits = sender.removeprefix("+")
    return digits.isascii() and digits.isdigit()


def _key(sender: str) -> str:
    """What two senders that are the same have in common (a number's '+' is not part of it)."""
    return sender.removeprefix("+") if _is_number(sender) else sender
