"""Delivery receipts: tolerant parsing of the TLV and text forms, SMSC message id matching.

Pure functions that never raise on SMSC input: aiosmpplib dies on 12-digit dates and on a
non-decimal ``err:``; real SMSCs send both, reorder fields, change key case and add their own.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from worker.smpp.pdu import MESSAGE_STATE, RECEIPTED_MESSAGE_ID

__all__ = [
    "Receipt",
    "ReceiptCore",
    "final_state",
    "final_state_of",
    "ids_of",
    "is_receipt",
    "normalise_smsc_id",
    "parse_receipt",
    "receipt_core",
    "receipt_id_candidates",
    "receipt_id_forms",
    "receipt_ids",
    "spelled_twice",
]

# esm_class message types (bits 5-2, SMPP 3.4 §5.2.12) that carry a receipt-like report:
# 0x04 SMSC delivery receipt, 0x08 SME delivery acknowledgement, 0x20 intermediate notification.
_RECEIPT_TYPES = frozenset({0x04, 0x08, 0x20})
_TYPE_MASK = 0x3C

# message_state TLV values (SMPP 3.4 §5.2.28) and their receipt `stat:` names.
_STATE_NAMES = {1: "ENROUTE", 2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV",
                6: "ACCEPTD", 7: "UNKNOWN", 8: "REJECTD"}
_KNOWN_STATS = frozenset(_STATE_NAMES.values())
# Spellings some SMSCs use instead of the seven-letter names.
_STAT_ALIASES = {"DELIVERED": "DELIVRD", "UNDELIVERED": "UNDELIV", "UNDELIVERABLE": "UNDELIV",
                 "REJECTED": "REJECTD", "ACCEPTED": "ACCEPTD", "EXPIRE": "EXPIRED"}
# Final stats -> lifecycle names. DELETED (cancelled at the SMSC) did not reach the handset.
_FINAL = {"DELIVRD": "delivered", "UNDELIV": "undelivered", "DELETED": "undelivered",
          "EXPIRED": "expired", "REJECTD": "rejected"}

# A key is a word followed by ':' at the start of the text or after whitespace; the two date
# keys contain a space (or an underscore, or nothing, depending on the SMSC).
_KEY = re.compile(r"(?i)(?<!\S)(submit[\s_]*date|done[\s_]*date|[a-z][a-z_]*)\s*:")
_LINE_END = re.compile(r"[\r\n]")
# The standard layout (SMPP 3.4 appendix B), matched in one go; anything else takes the scan.
_STANDARD = re.compile(r"id:(\S+) sub:(\S+) dlvrd:(\S+) submit date:(\d+) done date:(\d+) "
                       r"stat:(\S+) err:(\S+)(?: text:([^\r\n]*))?\Z")
# Keys that may follow a text: in the middle (see _text_end).
_ENDS_TEXT = frozenset({"id", "sub", "dlvrd", "submit date", "done date", "stat", "err"})
_MAX_ID_LEN = 65  # SMPP message_id is at most 65 octets; bounds the base conversions
_DECIMAL = re.compile(r"[0-9]+")
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt as the SMSC sent it."""

    message_id: str  # receipted_message_id TLV when present, else the text's id:
    stat: str  # DELIVRD, UNDELIV, EXPIRED, REJECTD, DELETED, ACCEPTD, UNKNOWN, ENROUTE, or as sent
    err: str  # as sent: may be "000", "0x1A" or "ABC"; "" when absent
    submit_date: datetime | None = None  # UTC
    done_date: datetime | None = None  # UTC
    sub: str | None = None
    dlvrd: str | None = None
    text: str | None = None
    message_state: int | None = None  # the message_state TLV
    text_id: str | None = None  # the text's id: when message_id is the TLV, else None


def is_receipt(esm_class: int) -> bool:
    """Whether a deliver_sm with this esm_class is a delivery report rather than an MO message."""
    return esm_class & _TYPE_MASK in _RECEIPT_TYPES


ReceiptCore = tuple[str, str | None, str, str, int | None]
"""``(message_id, text_id, stat, err, message_state)`` of a :class:`Receipt`: what recording
it needs (see :func:`receipt_core`)."""


def parse_receipt(text: str, tlvs: Mapping[int, bytes]) -> Receipt | None:
    """The receipt in a deliver_sm's text and TLVs; None when neither carries an id.

    Never raises: unknown fields are ignored, missing ones are None, bad dates are None.
    """
    m = _STANDARD.match(text)
    if m is not None:  # the layout nearly every SMSC sends: its fields, with no dict between
        text_id, sub, dlvrd, submitted, done, stat, err, rest = m.groups()
        return _receipt(tlvs, text_id, stat, err, submitted, done, sub, dlvrd,
                        None if rest is None else rest.strip())
    return _tolerant_receipt(text, tlvs)


def receipt_core(text: str, tlvs: Mapping[int, bytes]) -> ReceiptCore | None:
    """The ``(message_id, text_id, stat, err, message_state)`` fields of
    ``parse_receipt(text, tlvs)`` (None when it is None), without making the Receipt and its
    dates: the worker's receipt hot path, where they were a tenth of its Python per receipt."""
    m = _STANDARD.match(text)
    if m is not None:
        return _core(tlvs, m[1], m[6], m[7])
    fields = _fields_tolerant(text)
    return _core(tlvs, fields.get("id"), fields.get("stat"), fields.get("err", ""))


def _tolerant_receipt(text: str, tlvs: Mapping[int, bytes]) -> Receipt | None:
    """:func:`parse_receipt` of any layout: the slow path."""
    fields = _fields_tolerant(text)
    return _receipt(tlvs, fields.get("id"), fields.get("stat"), fields.get("err", ""),
                    fields.get("submit date"), fields.get("done date"), fields.get("sub"),
                    fields.get("dlvrd"), fields.get("text"))


def _receipt(
    tlvs: Mapping[int, bytes], text_id: str | None, stat: str | None, err: str,
    submitted: str | None, done: str | None, sub: str | None, dlvrd: str | None,
    text: str | None,
) -> Receipt | None:
    core = _core(tlvs, text_id, stat, err)
    if core is None:
        return None
    message_id, text_id, stat, err, state = core
    return Receipt(
        message_id=message_id, stat=stat, err=err, submit_date=_date(submitted),
        done_date=_date(done), sub=sub, dlvrd=dlvrd, text=text, message_state=state,
        text_id=text_id,
    )


def _core(
    tlvs: Mapping[int, bytes], text_id: str | None, stat: str | None, err: str,
) -> ReceiptCore | None:
    tlv_id = _c_string(tlvs.get(RECEIPTED_MESSAGE_ID, b""))
    message_id = tlv_id or text_id or ""
    if not message_id:
        return None
    state = _message_state(tlvs.get(MESSAGE_STATE))
    return (message_id, text_id if tlv_id else None,
            _stat(stat) or _STATE_NAMES.get(state or 0, "UNKNOWN"), err, state)


def _fields_tolerant(text: str) -> dict[str, str]:
    """Lower-case key -> value, in any order, any case, with unknown keys. ``text:`` takes the
    rest of its line; other values one token."""
    keys = [(m.start(), m.end(), _key(m.group(1))) for m in _KEY.finditer(text)]
    out: dict[str, str] = {}
    i = 0
    while i < len(keys):
        _, end, key = keys[i]
        if key == "text":
            i, stop = _text_end(text, keys, i)
            value = text[end:stop].strip()
        else:
            i += 1
            tokens = text[end:keys[i][0] if i < len(keys) else len(text)].split(maxsplit=1)
            value = tokens[0] if tokens else ""
        out.setdefault(key, value)  # the first occurrence wins over one quoted later
    return out


def _text_end(text: str, keys: list[tuple[int, int, str]], at: int) -> tuple[int, int]:
    """(index of the next key to read, where the value of the ``text:`` key ``at`` ends).

    ``text:`` takes the rest of its line, as it is last in the standard layout, unless a
    standard field missing from the rest of the receipt follows it on its line: some SMSCs put
    ``text:`` before ``stat:``/``err:``, and message text quoting "stat:" must not hide them.
    """
    start = keys[at][0]
    line_end_match = _LINE_END.search(text, keys[at][1])
    line_end = line_end_match.start() if line_end_match else len(text)
    elsewhere = {k for s, _, k in keys if s < start or s >= line_end}
    i = at + 1
    while i < len(keys) and keys[i][0] < line_end:
        if keys[i][2] in _ENDS_TEXT and keys[i][2] not in elsewhere:
            return i, keys[i][0]
        i += 1
    return i, line_end


def _key(raw: str) -> str:
    key = raw.lower()
    for date_key in ("submit", "done"):
        if key.startswith(date_key) and key.endswith("date"):
            return f"{date_key} date"
    return key


def _c_string(value: bytes) -> str:
    return value.split(b"\x00", 1)[0].decode("latin-1").strip()


def _message_state(value: bytes | None) -> int | None:
    return value[0] if value is not None and len(value) == 1 else None


def _stat(value: str | None) -> str:
    name = (value or "").strip().upper()
    return _STAT_ALIASES.get(name, name)


@functools.lru_cache(maxsize=1024)  # receipts of one minute share their dates
def _date(value: str | None) -> datetime | None:
    """YYMMDDhhmm or YYMMDDhhmmss as UTC; anything else (or an impossible date) is None."""
    if value is None or len(value) not in (10, 12) or not _DECIMAL.fullmatch(value):
        return None
    parts = [int(value[i:i + 2]) for i in range(0, len(value), 2)]
    year, month, day, hour, minute = parts[:5]
    second = parts[5] if len(parts) == 6 else 0
    try:
        return datetime(2000 + year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None


def final_state(receipt: Receipt) -> str | None:
    """Our lifecycle name (delivered, undelivered, expired, rejected) or None if not final.

    The text's ``stat:`` decides when it is a known name; an unknown one defers to the
    message_state TLV. ENROUTE, ACCEPTD and UNKNOWN are not final for us.
    """
    return final_state_of(receipt.stat, receipt.message_state)


def final_state_of(stat: str, message_state: int | None) -> str | None:
    """:func:`final_state` of a receipt with this ``stat`` and ``message_state``."""
    if stat in _KNOWN_STATS:
        return _FINAL.get(stat)
    return _FINAL.get(_STATE_NAMES.get(message_state or 0, ""))


def normalise_smsc_id(raw: str) -> str:
    """Canonical SMSC message id: cut at NUL, trimmed, lower case, no leading zeros ("0" stays)."""
    text = raw.split("\x00", 1)[0].strip().lower()
    return text.lstrip("0") or ("0" if text else "")


def receipt_id_forms(raw: str, id_format: str) -> dict[str, str]:
    """The normalised forms of a receipt's id by the convention each assumes, best first.

    ``id_format`` is the channel's: "same"; "hex_to_dec" (submit_sm_resp ids are hex, receipts
    decimal: the receipt id is converted to hex); "dec_to_hex" (the reverse); or "auto": every
    one of the three the id is valid for. An explicit format gives exactly its form, so a
    receipt can never match another message by an accidental same-form id; in auto mode the
    store picks among them by the convention it learned (see ``Store.record_receipts``).
    """
    same = normalise_smsc_id(raw)
    return _wanted(_every_form(same), id_format) if same else {}


def _every_form(same: str) -> dict[str, str | None]:
    """Every convention's form of the normalised id ``same`` (None: not valid for it)."""
    return {
        "same": same,
        "hex_to_dec": format(int(same), "x") if _convertible(same, _DECIMAL) else None,
        "dec_to_hex": str(int(same, 16)) if _convertible(same, _HEX) else None,
    }


def _wanted(forms: dict[str, str | None], id_format: str) -> dict[str, str]:
    same = forms["same"]
    wanted = forms if id_format == "auto" else {id_format: forms.get(id_format, same)}
    return {conv: form for conv, form in wanted.items() if form}


def receipt_ids(receipt: Receipt, id_format: str) -> tuple[dict[str, str], bool]:
    """``(receipt_id_forms(receipt.message_id, id_format), spelled_twice(receipt))``, with the
    id normalised and converted once instead of twice each (the receipt hot path)."""
    return ids_of(receipt.message_id, receipt.text_id, id_format)


def ids_of(
    message_id: str, text_id: str | None, id_format: str,
) -> tuple[dict[str, str], bool]:
    """:func:`receipt_ids` of a receipt with this ``message_id`` and ``text_id``."""
    same = normalise_smsc_id(message_id)
    if not same:
        return {}, False
    forms = _every_form(same)
    if text_id is None:
        return _wanted(forms, id_format), False
    text = normalise_smsc_id(text_id)
    # spelled_twice converts the id normalised twice; that is the id again unless it begins
    # with whitespace (" 12" of "0 12": every other step of normalise_smsc_id is idempotent)
    again = normalise_smsc_id(same) if same[0].isspace() else same
    converted = forms if again == same else _every_form(again)
    twice = same != text and text in (converted["hex_to_dec"], converted["dec_to_hex"])
    return _wanted(forms, id_format), twice


def receipt_id_candidates(raw: str, id_format: str) -> list[str]:
    """The distinct forms of :func:`receipt_id_forms`, best first."""
    return list(dict.fromkeys(receipt_id_forms(raw, id_format).values()))


def spelled_twice(receipt: Receipt) -> bool:
    """Whether the receipt spells its id twice in two bases: the receipted_message_id TLV and
    the text's ``id:`` (as "7b" and "123"). SMPP 3.4 makes the TLV the submit_sm_resp id, and
    the text confirms which number it is: the TLV's own form is the response's."""
    if receipt.text_id is None:
        return False
    tlv, text = normalise_smsc_id(receipt.message_id), normalise_smsc_id(receipt.text_id)
    converted = receipt_id_forms(tlv, "auto")
    return tlv != text and text in (converted.get("hex_to_dec"), converted.get("dec_to_hex"))


def _convertible(value: str, digits: re.Pattern[str]) -> bool:
    return len(value) <= _MAX_ID_LEN and digits.fullmatch(value) is not None
