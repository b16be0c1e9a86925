"""SMS encoding and segmenting: GSM 03.38 (septets) or UCS-2, split by UDH, SAR or payload.

Pure functions. ``analyse`` runs on the HTTP hot path, so it counts without encoding bytes.
Guards aiosmpplib's defect of counting characters instead of septets: an extension-table
character ('€', '[', ...) costs two septets, and a split never cuts an escape sequence or a
UTF-16 surrogate pair.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from aiosmpplib.codec import GSM_BASIC_ENCODE_MAP, GSM_EXTENDED_ENCODE_MAP, GSM7BitCodec

Encoding = Literal["gsm7", "ucs2"]
SplitMode = Literal["udh8", "udh16", "sar", "payload"]

SAR_MSG_REF_NUM = 0x020C
SAR_TOTAL_SEGMENTS = 0x020E
SAR_SEGMENT_SEQNUM = 0x020F
MESSAGE_PAYLOAD = 0x0424

_BASIC = frozenset(GSM_BASIC_ENCODE_MAP)
_EXTENDED = frozenset(GSM_EXTENDED_ENCODE_MAP)
_GSM = GSM7BitCodec()

# Units per segment: (single, multipart with udh8/sar, multipart with udh16)
_LIMITS: dict[Encoding, tuple[int, int, int]] = {"gsm7": (160, 153, 152), "ucs2": (70, 67, 66)}


@dataclass(frozen=True, slots=True)
class TextInfo:
    """How a text travels: its encoding, length in units, and SMS segment count."""

    encoding: Encoding
    units: int  # septets for gsm7, UTF-16 code units for ucs2
    segments: int


@dataclass(frozen=True, slots=True)
class Part:
    """One submit_sm's worth of a message."""

    short_message: bytes
    esm_class: int
    data_coding: int
    tlvs: dict[int, bytes] = field(default_factory=dict)


def _char_units(text: str) -> tuple[Encoding, list[int]]:
    """Units per character (septets or UTF-16 code units) and the encoding that fits."""
    gsm: list[int] = []
    for ch in text:
        if ch in _BASIC:
            gsm.append(1)
        elif ch in _EXTENDED:
            gsm.append(2)
        else:
            return "ucs2", [2 if ord(c) > 0xFFFF else 1 for c in text]
    return "gsm7", gsm


def analyse(text: str) -> TextInfo:
    """Encoding, length and segment count of ``text`` (concatenated with 8-bit UDH)."""
    encoding, units = _char_units(text)
    total = sum(units)
    single, multi, _ = _LIMITS[encoding]
    segments = 1 if total <= single else -(-total // multi)
    return TextInfo(encoding=encoding, units=total, segments=segments)


def _chunks(text: str, units: list[int], size: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``size`` units, never inside a character."""
    out: list[str] = []
    start = used = 0
    for i, u in enumerate(units):
        if used + u > size:
            out.append(text[start:i])
            start, used = i, 0
        used += u
    out.append(text[start:])
    return out


def _encode(text: str, encoding: Encoding) -> bytes:
    if encoding == "gsm7":
        return bytes(_GSM.encode(text)[0])
    return text.encode("utf-16-be")


def split(text: str, mode: SplitMode, ref: int) -> list[Part]:
    """The submit_sm parts of ``text``; ``ref`` is the concatenation reference to use."""
    encoding, units = _char_units(text)
    coding = 0 if encoding == "gsm7" else 8
    single, multi8, multi16 = _LIMITS[encoding]
    if sum(units) <= single:
        return [Part(_encode(text, encoding), 0, coding)]
    if mode == "payload":
        return [Part(b"", 0, coding, {MESSAGE_PAYLOAD: _encode(text, encoding)})]
    pieces = _chunks(text, units, multi16 if mode == "udh16" else multi8)
    total = len(pieces)
    parts: list[Part] = []
    for seq, piece in enumerate(pieces, 1):
        body = _encode(piece, encoding)
        if mode == "sar":
            tlvs = {SAR_MSG_REF_NUM: (ref & 0xFFFF).to_bytes(2, "big"),
                    SAR_TOTAL_SEGMENTS: bytes((total,)), SAR_SEGMENT_SEQNUM: bytes((seq,))}
            parts.append(Part(body, 0, coding, tlvs))
        elif mode == "udh16":
            udh = bytes((6, 0x08, 4)) + (ref & 0xFFFF).to_bytes(2, "big") + bytes((total, seq))
            parts.append(Part(udh + body, 0x40, coding))
        else:
            udh = bytes((5, 0x00, 3, ref & 0xFF, total, seq))
            parts.append(Part(udh + body, 0x40, coding))
    return parts


def decode_text(data: bytes, data_coding: int) -> str:
    """Text of a short message for logs and MO messages; never raises."""
    if data_coding == 8:
        return data.decode("utf-16-be", errors="replace")
    if data_coding in (3, 1):
        return data.decode("latin-1")
    try:
        return str(_GSM.decode(data)[0])
    except (ValueError, KeyError, IndexError):
        return data.decode("latin-1")
