"""What the simulator remembers about each submit_sm: decoded, and optionally as JSON lines."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import IO, Any

from aiosmpplib.codec import GSM7BitCodec

from worker.smpp.pdu import (
    SAR_MSG_REF_NUM,
    SAR_SEGMENT_SEQNUM,
    SAR_TOTAL_SEGMENTS,
    ShortMessage,
    status_name,
    tlv_int,
)

_UDHI = 0x40
_IEI_CONCAT_8 = 0x00
_IEI_CONCAT_16 = 0x08
_GSM = GSM7BitCodec()
_ESCAPE = 0x1B


def _gsm_table() -> dict[int, str]:
    # aiosmpplib decodes one character per Python call; at >10k messages/s that dominated the
    # simulator's profile. The codec stays the source of truth: this table is built from it.
    return {byte: str(_GSM.decode(bytes((byte,)), "replace")[0]) for byte in range(256)}


_GSM_TABLE = _gsm_table()


def decode_gsm(data: bytes) -> str:
    """Decode unpacked GSM 03.38 (one septet per byte), as aiosmpplib's GSM7BitCodec does."""
    if _ESCAPE in data:  # extension table (€, {, }...): rare, let the codec handle it
        return str(_GSM.decode(data, "replace")[0])
    return data.decode("latin-1").translate(_GSM_TABLE)


@dataclass(frozen=True, slots=True)
class Concat:
    """Concatenation info of one segment, from a UDH IE (iei 0 or 8) or from SAR TLVs (iei None)."""

    ref: int
    total: int
    seq: int
    iei: int | None = None

    def as_json(self) -> dict[str, int | None]:
        """A JSON-ready dict."""
        return {"iei": self.iei, "ref": self.ref, "total": self.total, "seq": self.seq}


@dataclass(frozen=True, slots=True)
class SubmitRecord:
    """One submit_sm as received, and how the simulator answered it."""

    time: float
    system_id: str
    source: str
    destination: str
    data_coding: int
    esm_class: int
    registered_delivery: int
    udh: Concat | None
    sar: Concat | None
    text: str | None  # None for binary data codings
    message_id: str  # "" unless accepted
    status: int | None  # None when never answered
    response: str  # "submit_sm_resp", "generic_nack" or "none"

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the JSONL log line)."""
        return {
            "time": self.time,
            "system_id": self.system_id,
            "source": self.source,
            "destination": self.destination,
            "data_coding": self.data_coding,
            "esm_class": self.esm_class,
            "registered_delivery": self.registered_delivery,
            "udh": self.udh.as_json() if self.udh else None,
            "sar": self.sar.as_json() if self.sar else None,
            "text": self.text,
            "message_id": self.message_id,
            "status": self.status,
            "status_name": None if self.status is None else status_name(self.status),
            "response": self.response,
        }


def split_udh(payload: bytes) -> tuple[Concat | None, bytes]:
    """Split a UDH off `payload`; return its concatenation IE (if any) and the remaining bytes.

    A malformed header yields (None, payload): the simulator logs what it got rather than fail.
    """
    if not payload:
        return None, payload
    udhl = payload[0]
    if udhl + 1 > len(payload):
        return None, payload
    header, rest = payload[1 : udhl + 1], payload[udhl + 1 :]
    pos, concat = 0, None
    while pos + 2 <= len(header):
        iei, length = header[pos], header[pos + 1]
        value = header[pos + 2 : pos + 2 + length]
        if len(value) < length:
            return None, payload
        if iei == _IEI_CONCAT_8 and length == 3:
            concat = Concat(value[0], value[1], value[2], iei)
        elif iei == _IEI_CONCAT_16 and length == 4:
            concat = Concat(int.from_bytes(value[:2], "big"), value[2], value[3], iei)
        pos += 2 + length
    return concat, rest


def decode_text(data: bytes, data_coding: int) -> str | None:
    """Decode message bytes for the log: GSM 03.38 (0), latin-1 (3), UCS-2/UTF-16 (8)."""
    if data_coding == 0:
        return decode_gsm(data)
    if data_coding == 3:
        return data.decode("latin-1")
    if data_coding == 8:
        return data.decode("utf-16-be", "replace")
    if data_coding == 1:
        return data.decode("ascii", "replace")
    return None


def sar_info(tlvs: dict[int, bytes]) -> Concat | None:
    """Concatenation info from SAR TLVs, if all three are present."""
    try:
        ref = tlvs[SAR_MSG_REF_NUM]
        total = tlvs[SAR_TOTAL_SEGMENTS]
        seq = tlvs[SAR_SEGMENT_SEQNUM]
    except KeyError:
        return None
    return Concat(tlv_int(ref), tlv_int(total), tlv_int(seq))


def describe(message: ShortMessage) -> tuple[Concat | None, Concat | None, str | None]:
    """UDH concat info, SAR info and decoded text of a submitted message."""
    payload = message.payload()
    udh = None
    if message.esm_class & _UDHI:
        udh, payload = split_udh(payload)
    return udh, sar_info(message.tlvs), decode_text(payload, message.data_coding)


class JsonlLog:
    """Append-only JSON-lines file, flushed once per event-loop iteration rather than per line."""

    def __init__(self, path: str) -> None:
        self._file: IO[str] = open(path, "a", encoding="utf-8")  # closed by close()
        self._flush_scheduled = False

    def write(self, record: SubmitRecord) -> None:
        """Queue one line; it reaches the file by the end of this loop iteration."""
        self._file.write(json.dumps(record.as_json(), ensure_ascii=False) + "\n")
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        """Flush and close the file."""
        self._file.close()
