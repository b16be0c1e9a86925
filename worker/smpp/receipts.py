"""Delivery receipts: tolerant parsing of the TLV and text forms, SMSC id normalisation.

Never raises on SMSC input (aiosmpplib dies on 12-digit dates and non-decimal ``err:``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

RECEIPTED_MESSAGE_ID = 0x001E
MESSAGE_STATE = 0x0427

_FIELD = re.compile(
    r"(?i)\b(id|sub|dlvrd|submit date|done date|stat|err|text)\s*:\s*"
)
_STATE_BY_TLV = {2: "DELIVRD", 3: "EXPIRED", 4: "DELETED", 5: "UNDELIV", 6: "ACCEPTD",
                 7: "UNKNOWN", 8: "REJECTD", 1: "ENROUTE"}
_FINAL = {"DELIVRD": "delivered", "UNDELIV": "undelivered", "EXPIRED": "expired",
          "REJECTD": "rejected", "DELETED": "undelivered"}


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt as the SMSC sent it."""

    message_id: str
    stat: str
    err: str
    submit_date: datetime | None = None
    done_date: datetime | None = None
    sub: str | None = None
    dlvrd: str | None = None
    text: str | None = None
    message_state: int | None = None


def is_receipt(esm_class: int) -> bool:
    """An SMSC delivery receipt (0x04) or an intermediate notification (0x20)."""
    return esm_class & 0x3C in (0x04, 0x20)


def _fields(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    matches = list(_FIELD.finditer(text))
    for m, nxt in zip(matches, [*matches[1:], None], strict=True):
        key = m.group(1).lower()
        end = len(text) if key == "text" or nxt is None else nxt.start()
        out.setdefault(key, text[m.end():end].strip())
    return out


def _date(value: str | None) -> datetime | None:
    if not value or not value.isdigit() or len(value) not in (10, 12):
        return None
    try:
        return datetime.strptime(value, "%y%m%d%H%M%S" if len(value) == 12 else "%y%m%d%H%M"
                                 ).replace(tzinfo=UTC)
    except ValueError:
        return None


def parse_receipt(text: str, tlvs: Mapping[int, bytes]) -> Receipt | None:
    """The receipt in a deliver_sm; None when neither form carries an id."""
    f = _fields(text)
    tlv_id = tlvs.get(RECEIPTED_MESSAGE_ID, b"").split(b"\x00", 1)[0].decode("latin-1").strip()
    state_raw = tlvs.get(MESSAGE_STATE, b"")
    state = state_raw[0] if len(state_raw) == 1 else None
    message_id = tlv_id or f.get("id", "")
    if not message_id:
        return None
    stat = (f.get("stat") or _STATE_BY_TLV.get(state or 0, "UNKNOWN")).upper()[:7]
    return Receipt(
        message_id=message_id, stat=stat, err=f.get("err", ""),
        submit_date=_date(f.get("submit date")), done_date=_date(f.get("done date")),
        sub=f.get("sub"), dlvrd=f.get("dlvrd"), text=f.get("text"), message_state=state,
    )


def final_state(receipt: Receipt) -> str | None:
    """Our lifecycle name for a final receipt, or None for an intermediate one."""
    if receipt.stat in _FINAL:
        return _FINAL[receipt.stat]
    return _FINAL.get(_STATE_BY_TLV.get(receipt.message_state or 0, ""))


def normalise_smsc_id(raw: str) -> str:
    """Canonical form of an SMSC message id: trimmed, lower case, no leading zeros."""
    text = raw.split("\x00", 1)[0].strip().lower()
    return text.lstrip("0") or ("0" if text else "")


def receipt_id_candidates(raw: str, id_format: str) -> list[str]:
    """Normalised forms to look a receipt's id up by, best first.

    ``auto`` tries the same form first, then the other base, since SMSCs often answer
    submit_sm in one base and write receipts in the other.
    """
    same = normalise_smsc_id(raw)
    forms: list[str] = []
    if id_format in ("auto", "same"):
        forms.append(same)
    # "hex_to_dec": submit_sm_resp ids are hex, receipts carry them in decimal (and vice versa).
    if id_format in ("auto", "hex_to_dec") and same.isdigit():
        forms.append(format(int(same), "x"))
    if id_format in ("auto", "dec_to_hex") and re.fullmatch(r"[0-9a-f]+", same):
        forms.append(str(int(same, 16)))
    return list(dict.fromkeys(f for f in forms if f))
