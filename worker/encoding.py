"""SMS encoding and segmenting: GSM 03.38 septets or UCS-2, split by UDH, SAR or payload.

Pure functions, no I/O. ``analyse`` runs on the HTTP hot path, so it counts units without
encoding bytes. It guards aiosmpplib's defect of counting characters instead of septets: an
extension-table character ('€', '[', ...) costs two septets (escape + code), and ``split`` never
cuts an escape sequence or a UTF-16 surrogate pair across segments.

GSM text travels unpacked (one septet per octet, data_coding 0); the SMSC packs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from aiosmpplib.codec import GSM_BASIC_ENCODE_MAP, GSM_EXTENDED_ENCODE_MAP, GSM7BitCodec

from worker.smpp.pdu import (
    MESSAGE_PAYLOAD,
    SAR_MSG_REF_NUM,
    SAR_SEGMENT_SEQNUM,
    SAR_TOTAL_SEGMENTS,
)

Encoding = Literal["gsm7", "ucs2"]
SplitMode = Literal["udh8", "udh16", "sar", "payload"]

__all__ = [
    "Concat",
    "Encoding",
    "Part",
    "SplitMode",
    "TextInfo",
    "analyse",
    "decode_text",
    "parse_udh",
    "read_udh",
    "split",
]

ESM_UDHI = 0x40
DC_DEFAULT = 0x00
DC_UCS2 = 0x08
IEI_CONCAT_8 = 0x00
IEI_CONCAT_16 = 0x08
MAX_SEGMENTS = 255  # the total-segments field is one octet in both UDH and SAR

_BASIC = frozenset(GSM_BASIC_ENCODE_MAP)
_EXTENDED = frozenset(GSM_EXTENDED_ENCODE_MAP)  # each costs two septets: ESC + code
_GSM = _BASIC | _EXTENDED
_BMP_MAX = "\uffff"  # above it a character is a surrogate pair in UTF-16
_CODEC = GSM7BitCodec()  # stateless
_ESCAPE = "\x1b"
# str.translate table: a basic character to its code, an extension character to ESC + code
# (the basic table wins for a character in both, as in GSM7BitCodec.encode).
_GSM_TRANSLATE: dict[int, str] = {
    **{ord(c): _ESCAPE + chr(code) for c, code in GSM_EXTENDED_ENCODE_MAP.items()},
    **{ord(c): chr(code) for c, code in GSM_BASIC_ENCODE_MAP.items()},
}

# Units per segment: (single, multipart with udh8 or sar, multipart with udh16).
_LIMITS: dict[Encoding, tuple[int, int, int]] = {"gsm7": (160, 153, 152), "ucs2": (70, 67, 66)}

# SMPP 3.4 data_coding values that name a charset: ours, or the Python codec to decode with.
_CHARSETS = {DC_DEFAULT: "gsm7", 0x01: "ascii", 0x03: "latin-1", 0x06: "iso8859_5",
             0x07: "iso8859_8", DC_UCS2: "utf-16-be"}


@dataclass(frozen=True, slots=True)
class TextInfo:
    """How a text travels: its encoding, its length in units and its SMS segment count."""

    encoding: Encoding
    units: int  # septets for gsm7 (extension chars count 2), UTF-16 code units for ucs2
    segments: int  # 1 if it fits one SMS, else the count of 153-septet / 67-unit parts


@dataclass(frozen=True, slots=True)
class Part:
    """One submit_sm's worth of a message."""

    short_message: bytes  # UDH (if any) + encoded text
    esm_class: int  # ESM_UDHI when a UDH is present
    data_coding: int  # 0 for gsm7 (unpacked), 8 for ucs2
    tlvs: dict[int, bytes] = field(default_factory=dict)  # SAR or message_payload


@dataclass(frozen=True, slots=True)
class Concat:
    """Concatenation info of one received segment, read from its UDH."""

    ref: int
    total: int
    seq: int  # 1-based
    ref_bits: int  # 8 or 16: the same number in the two forms names different messages


def analyse(text: str, mode: SplitMode = "udh8") -> TextInfo:
    """Encoding, length in units and segment count of ``text`` sent in ``mode``.

    The count is the number of parts :func:`split` makes, both cut by :func:`_starts`; in
    payload mode, the SMS the SMSC makes of the one PDU, taken to be cut as udh8. Cheap for a
    text that fits one SMS (encodes nothing). Beyond 255 segments the count is a lower bound
    (the text is not cut: no limit allows it).
    """
    encoding, units = _measure(text)
    single, multi, multi16 = _LIMITS[encoding]
    if units <= single:
        return TextInfo(encoding=encoding, units=units, segments=1)
    size = multi16 if mode == "udh16" else multi
    segments = -(-units // size)  # exact without two-unit characters, else a lower bound
    if segments <= MAX_SEGMENTS and (encoding == "ucs2" or units != len(text)):
        segments = len(_starts(_encode(text, encoding), encoding, size))
    return TextInfo(encoding=encoding, units=units, segments=segments)


def _measure(text: str) -> tuple[Encoding, int]:
    """The encoding ``text`` needs and its length in units, counted without encoding."""
    chars = set(text)
    if chars <= _BASIC:
        return "gsm7", len(text)
    if chars <= _GSM:
        return "gsm7", len(text) + sum(text.count(c) for c in chars & _EXTENDED)
    return "ucs2", len(text) + sum(text.count(c) for c in chars if c > _BMP_MAX)


def split(text: str, mode: SplitMode, ref: int) -> list[Part]:
    """The submit_sm parts of ``text``, concatenated the way ``mode`` says.

    ``ref`` is the concatenation reference (udh8 keeps its low 8 bits, udh16 and sar 16). A text
    that fits one SMS is one plain part in every mode. Raises ValueError beyond 255 segments,
    which the gateway's segment limit rules out.
    """
    encoding, units = _measure(text)
    coding = DC_DEFAULT if encoding == "gsm7" else DC_UCS2
    single, multi, multi16 = _LIMITS[encoding]
    body = _encode(text, encoding)
    if units <= single:
        return [Part(body, 0, coding)]
    if mode == "payload":
        return [Part(b"", 0, coding, {MESSAGE_PAYLOAD: body})]
    starts = _starts(body, encoding, multi16 if mode == "udh16" else multi)
    total = len(starts)
    if total > MAX_SEGMENTS:
        raise ValueError(f"text needs {total} segments; at most {MAX_SEGMENTS} fit a reference")
    ends = [*starts[1:], len(body)]
    return [_part(body[start:end], coding, mode, ref, total, seq)
            for seq, (start, end) in enumerate(zip(starts, ends, strict=True), 1)]


def _part(body: bytes, coding: int, mode: SplitMode, ref: int, total: int, seq: int) -> Part:
    if mode == "sar":
        tlvs = {SAR_MSG_REF_NUM: (ref & 0xFFFF).to_bytes(2, "big"),
                SAR_TOTAL_SEGMENTS: bytes((total,)), SAR_SEGMENT_SEQNUM: bytes((seq,))}
        return Part(body, 0, coding, tlvs)
    if mode == "udh16":
        udh = bytes((6, IEI_CONCAT_16, 4, (ref >> 8) & 0xFF, ref & 0xFF, total, seq))
    else:
        udh = bytes((5, IEI_CONCAT_8, 3, ref & 0xFF, total, seq))
    return Part(udh + body, ESM_UDHI, coding)


def _starts(body: bytes, encoding: Encoding, size: int) -> list[int]:
    """Where each part of an encoded text begins: parts of ``size`` units, none ending in the
    first unit of a two-unit character (GSM escape, UTF-16 high surrogate), which would be cut
    from its second. The one place that decides the parts, for the count and the wire alike.
    """
    width = 1 if encoding == "gsm7" else 2
    step = size * width
    starts = [0]
    start = 0
    while len(body) - start > step:
        end = start + step
        lead = body[end - width]
        # 0x1B is never an extension code, so in gsm7 it only ever opens an escape.
        if (lead == 0x1B) if width == 1 else (0xD8 <= lead <= 0xDB):
            end -= width
        starts.append(end)
        start = end
    return starts


def _encode(text: str, encoding: Encoding) -> bytes:
    if encoding == "gsm7":
        # One C-level pass instead of the codec's per-character loop; the same bytes (tested).
        # Only for text analysed as gsm7, so every character has an entry.
        return text.translate(_GSM_TRANSLATE).encode("latin-1")
    # surrogatepass: a lone surrogate (possible from JSON "\ud83d") is sent, not a crash.
    return text.encode("utf-16-be", errors="surrogatepass")


def decode_text(data: bytes, data_coding: int) -> str:
    """The text of a short message (MO messages, logs); never raises, replaces what is bad."""
    alphabet = _alphabet(data_coding)
    if alphabet == "gsm7":
        return str(_CODEC.decode(data, "replace")[0])
    return data.decode(alphabet, errors="replace")


def _alphabet(data_coding: int) -> str:
    """"gsm7" or a Python codec name for an SMPP 3.4 / GSM 03.38 data_coding value."""
    if data_coding in _CHARSETS:
        return _CHARSETS[data_coding]
    group = data_coding >> 4
    if group == 0x1:  # general group with a message class: bits 3-2 name the alphabet
        return {0: "gsm7", 2: "utf-16-be"}.get((data_coding >> 2) & 0x03, "latin-1")
    if group in (0xC, 0xD):  # message waiting indication, default alphabet
        return "gsm7"
    if group == 0xE:  # message waiting indication, UCS-2
        return "utf-16-be"
    if group == 0xF:  # data coding / message class: bit 2 set means 8-bit data
        return "latin-1" if data_coding & 0x04 else "gsm7"
    return "latin-1"  # 8-bit binary and unknown codings: one char per octet, for logs


def parse_udh(short_message: bytes) -> tuple[Concat | None, bytes]:
    """Concatenation info and the text octets of a short_message that starts with a UDH.

    Call it only when esm_class has UDHI set. Reads 8-bit (IEI 0x00) and 16-bit (IEI 0x08)
    references; a malformed header yields ``(None, short_message)``, an unknown or invalid
    concatenation element ``(None, body)``. Never raises.
    """
    read = read_udh(short_message)
    if read is None:
        return None, short_message
    concat, body = read
    return (concat if concat is not None and 1 <= concat.seq <= concat.total else None), body


def read_udh(short_message: bytes) -> tuple[Concat | None, bytes] | None:
    """The concatenation element of a UDH (the last one, whatever other elements stand before
    or after it), not range-checked, and the octets after the header; None when the header
    is malformed (its length runs past the message or past an element)."""
    if not short_message:
        return None, b""
    end = 1 + short_message[0]
    if end > len(short_message):
        return None
    header, body = short_message[1:end], short_message[end:]
    concat: Concat | None = None
    i = 0
    while i + 2 <= len(header):
        iei, length = header[i], header[i + 1]
        value = header[i + 2:i + 2 + length]
        if len(value) < length:
            return None
        concat = _concat(iei, value) or concat
        i += 2 + length
    return concat, body


def _concat(iei: int, value: bytes) -> Concat | None:
    if iei == IEI_CONCAT_8 and len(value) == 3:
        return Concat(value[0], value[1], value[2], 8)
    if iei == IEI_CONCAT_16 and len(value) == 4:
        return Concat(int.from_bytes(value[:2], "big"), value[2], value[3], 16)
    return None
