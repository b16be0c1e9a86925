"""Receipts and MO messages for SMPP clients: a stream entry (worker/store/smpp_server.py) → a
deliver_sm body. A receipt in the form SMSCs use (SMPP 3.4 Appendix B), with
receipted_message_id and message_state; an MO message as the handset sent it (esm_class 0)."""

from __future__ import annotations

from datetime import UTC, datetime

from worker.smpp.pdu import (
    MESSAGE_PAYLOAD,
    MESSAGE_STATE,
    RECEIPTED_MESSAGE_ID,
    ShortMessage,
    encode_c_string,
)

RECEIPT_ESM_CLASS = 0x04  # "SMSC delivery receipt"
MO_ESM_CLASS = 0x00  # a plain message
ASCII_CODING, UCS2_CODING = 0x00, 0x08  # this server's default alphabet is ASCII
_SHORT_MESSAGE_MAX = 254

# status -> (stat text, message_state TLV value, delivered count)
_STATES: dict[str, tuple[str, int, int]] = {
    "submitted": ("ENROUTE", 1, 0),
    "unknown": ("UNKNOWN", 7, 0),
    "delivered": ("DELIVRD", 2, 1),
    "undelivered": ("UNDELIV", 5, 0),
    "expired": ("EXPIRED", 3, 0),
    "rejected": ("REJECTD", 8, 0),
    "failed": ("UNDELIV", 5, 0),
}
_UNKNOWN = ("UNKNOWN", 7, 0)


def _state(fields: dict[str, str]) -> tuple[str, int, int]:
    """The receipt's stat, message_state and delivered count: a message that failed as
    Expired (its validity ended, or max age, before any submit was accepted) is EXPIRED."""
    status = fields.get("status", "")
    if status == "failed" and fields.get("code") == "Expired":
        status = "expired"
    return _STATES.get(status, _UNKNOWN)


def _date(ms: str) -> str:
    when = datetime.fromtimestamp(int(ms or 0) / 1000, tz=UTC)
    return when.strftime("%y%m%d%H%M")


def receipt_text(fields: dict[str, str]) -> str:
    """``id:... sub:001 dlvrd:001 submit date:... done date:... stat:DELIVRD err:000 text:...``"""
    stat, _, delivered = _state(fields)
    err = fields.get("err") or fields.get("code") or "0"
    err = err if err.isdigit() else "0"
    text = fields.get("text", "").encode("utf-8", "surrogateescape").decode(
        "utf-8", "ignore")[:20]
    return (f"id:{fields.get('id', '')} sub:001 dlvrd:{delivered:03d} "
            f"submit date:{_date(fields.get('submitted', ''))} "
            f"done date:{_date(fields.get('at', ''))} stat:{stat} err:{int(err) % 1000:03d} "
            f"text:{text}")


def receipt_pdu_body(fields: dict[str, str]) -> bytes:
    """The deliver_sm body of a receipt: from the handset, to the client's source_addr."""
    _, state, _ = _state(fields)
    text = receipt_text(fields).encode("latin-1", "replace")
    return ShortMessage(
        source_addr=fields.get("to", ""), destination_addr=fields.get("src", ""),
        source_addr_ton=1, source_addr_npi=1, esm_class=RECEIPT_ESM_CLASS,
        short_message=text[:254],
        tlvs={RECEIPTED_MESSAGE_ID: encode_c_string(fields.get("id", "")),
              MESSAGE_STATE: bytes((state,))},
    ).encode()


def mo_pdu_body(fields: dict[str, str]) -> bytes:
    """The deliver_sm body of an MO message: from the handset to the number it was sent to,
    ASCII text with data_coding 0, any other in UCS-2 (8); over 254 octets in
    message_payload."""
    text = fields.get("text", "").encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if text.isascii():
        coding, octets = ASCII_CODING, text.encode("ascii")
    else:
        coding, octets = UCS2_CODING, text.encode("utf-16-be", "surrogatepass")
    long = len(octets) > _SHORT_MESSAGE_MAX
    return ShortMessage(
        source_addr=fields.get("from", ""), destination_addr=fields.get("to", ""),
        source_addr_ton=1, source_addr_npi=1, dest_addr_ton=1, dest_addr_npi=1,
        esm_class=MO_ESM_CLASS, data_coding=coding, short_message=b"" if long else octets,
        tlvs={MESSAGE_PAYLOAD: octets} if long else {},
    ).encode()


def pdu_body(fields: dict[str, str]) -> bytes:
    """The deliver_sm body of a stream entry, by its kind ('mo', else a receipt)."""
    return mo_pdu_body(fields) if fields.get("kind") == "mo" else receipt_pdu_body(fields)
