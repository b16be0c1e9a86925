"""Unit tests for the SMPP 3.4 PDU codec."""

from __future__ import annotations

import functools
import random
from dataclasses import replace

import pytest

from worker.encoding import SplitMode, split
from worker.smpp import pdu
from worker.smpp.pdu import Bind, Pdu, PduBuffer, PduError, ShortMessage


def _full_message() -> ShortMessage:
    return ShortMessage(
        source_addr="SENDER",
        destination_addr="447700900123",
        source_addr_ton=5,
        source_addr_npi=0,
        dest_addr_ton=1,
        dest_addr_npi=1,
        service_type="CMT",
        esm_class=0x40,
        protocol_id=0,
        priority_flag=1,
        schedule_delivery_time="",
        validity_period="000001000000000R",
        registered_delivery=1,
        replace_if_present_flag=0,
        data_coding=8,
        sm_default_msg_id=0,
        short_message=b"\x05\x00\x03\x2a\x02\x01" + "héllo".encode("utf-16-be"),
        tlvs={pdu.SAR_MSG_REF_NUM: b"\x00\x2a", 0x1403: b"vendor"},
    )


def test_encode_pdu_writes_length_and_header() -> None:
    raw = pdu.encode_pdu(pdu.SUBMIT_SM_RESP, pdu.ESME_ROK, 7, b"abc\x00")
    assert raw[:16] == bytes.fromhex("00000014800000040000000000000007")
    assert raw[16:] == b"abc\x00"


def test_pdu_buffer_joins_a_pdu_split_across_feeds() -> None:
    raw = pdu.encode_pdu(pdu.ENQUIRE_LINK, 0, 42)
    buf = PduBuffer()
    assert buf.feed(raw[:5]) == []
    assert buf.feed(raw[5:15]) == []
    assert buf.feed(raw[15:]) == [Pdu(pdu.ENQUIRE_LINK, 0, 42, b"")]
    assert buf.pending() == 0


def test_pdu_buffer_returns_several_pdus_from_one_feed_and_keeps_the_tail() -> None:
    first = pdu.encode_pdu(pdu.SUBMIT_SM, 0, 1, b"x" * 10)
    second = pdu.encode_pdu(pdu.UNBIND, 0, 2)
    third = pdu.encode_pdu(pdu.ENQUIRE_LINK, 0, 3)
    buf = PduBuffer()
    got = buf.feed(first + second + third[:7])
    assert [(p.command_id, p.seq, p.body) for p in got] == [
        (pdu.SUBMIT_SM, 1, b"x" * 10),
        (pdu.UNBIND, 2, b""),
    ]
    assert buf.pending() == 7
    assert buf.feed(third[7:]) == [Pdu(pdu.ENQUIRE_LINK, 0, 3)]


@pytest.mark.parametrize("length", [0, 15, 1_000_000])
def test_pdu_buffer_rejects_an_impossible_command_length(length: int) -> None:
    raw = length.to_bytes(4, "big") + bytes(12)
    with pytest.raises(PduError):
        PduBuffer().feed(raw)


def test_bind_round_trips() -> None:
    bind = Bind("smsgw", "secret", "VMA", 0x34, 1, 1, "^44")
    assert Bind.decode(bind.encode()) == bind


def test_short_message_round_trips_with_all_fields_and_tlvs() -> None:
    message = _full_message()
    decoded = ShortMessage.decode(message.encode())
    assert decoded == message
    assert list(decoded.tlvs) == [pdu.SAR_MSG_REF_NUM, 0x1403]


def test_short_message_keeps_unknown_tlvs() -> None:
    body = ShortMessage(destination_addr="1").encode() + pdu.encode_tlv(0x1501, b"\x01\x02")
    assert ShortMessage.decode(body).tlvs == {0x1501: b"\x01\x02"}


def test_short_message_over_254_bytes_is_refused() -> None:
    with pytest.raises(ValueError):
        ShortMessage(short_message=b"a" * 255).encode()


def test_payload_falls_back_to_message_payload_tlv() -> None:
    long_text = b"b" * 400
    message = ShortMessage(tlvs={pdu.MESSAGE_PAYLOAD: long_text})
    assert ShortMessage.decode(message.encode()).payload() == long_text
    assert ShortMessage(short_message=b"hi").payload() == b"hi"


@pytest.mark.parametrize("cut", range(0, 40))
def test_truncated_short_message_body_raises_pdu_error(cut: int) -> None:
    body = _full_message().encode()
    truncated = body[:cut]
    with pytest.raises(PduError):
        ShortMessage.decode(truncated)


@pytest.mark.parametrize("cut", [1, 3, 10, 25])
def test_truncated_tlv_raises_pdu_error(cut: int) -> None:
    body = ShortMessage().encode() + pdu.encode_tlv(pdu.MESSAGE_PAYLOAD, b"z" * 30)
    sm_end = len(ShortMessage().encode())
    with pytest.raises(PduError):
        ShortMessage.decode(body[: sm_end + cut])


def test_short_message_shorter_than_sm_length_raises_pdu_error() -> None:
    body = ShortMessage(short_message=b"hello").encode()
    with pytest.raises(PduError):
        ShortMessage.decode(body[:-2])


@pytest.mark.parametrize("cut", range(0, 21))
def test_truncated_bind_body_raises_pdu_error(cut: int) -> None:
    body = Bind("smsgw", "secret", "VMA").encode()
    assert len(body) > 20
    with pytest.raises(PduError):
        Bind.decode(body[:cut])


def test_decode_message_id_reads_c_string_and_tolerates_empty_body() -> None:
    assert pdu.decode_message_id(pdu.encode_c_string("0a1b2c")) == "0a1b2c"
    assert pdu.decode_message_id(b"") == ""
    with pytest.raises(PduError):
        pdu.decode_message_id(b"abc")


def test_tlv_int_decodes_big_endian_of_any_width() -> None:
    assert pdu.tlv_int(b"\x02") == 2
    assert pdu.tlv_int(b"\x01\x00") == 256
    assert pdu.tlv_int(b"\x00\x00\x04\x00") == 1024


def test_status_names_cover_ours_spec_and_vendor_codes() -> None:
    assert pdu.status_name(pdu.ESME_RTHROTTLED) == "ESME_RTHROTTLED"
    assert pdu.status_name(pdu.ESME_ROK) == "ESME_ROK"
    assert pdu.status_name(0x45) == "ESME_RSUBMITFAIL"
    assert pdu.status_name(0x400) == "0x00000400"


def test_command_names_never_raise_for_unknown_ids() -> None:
    assert pdu.command_name(pdu.SUBMIT_SM) == "submit_sm"
    assert pdu.command_name(pdu.SUBMIT_SM_RESP) == "submit_sm_resp"
    assert pdu.command_name(pdu.GENERIC_NACK) == "generic_nack"
    assert pdu.command_name(0x00000999) == "0x00000999"
    assert pdu.command_name(0x80000999) == "0x80000999"


def test_resp_ids_have_the_resp_bit() -> None:
    for request, response in [
        (pdu.BIND_RECEIVER, pdu.BIND_RECEIVER_RESP),
        (pdu.BIND_TRANSMITTER, pdu.BIND_TRANSMITTER_RESP),
        (pdu.BIND_TRANSCEIVER, pdu.BIND_TRANSCEIVER_RESP),
        (pdu.SUBMIT_SM, pdu.SUBMIT_SM_RESP),
        (pdu.DELIVER_SM, pdu.DELIVER_SM_RESP),
        (pdu.UNBIND, pdu.UNBIND_RESP),
        (pdu.ENQUIRE_LINK, pdu.ENQUIRE_LINK_RESP),
    ]:
        assert response == request | pdu.RESP_BIT
        assert pdu.is_response(response) and not pdu.is_response(request)


def _data_sm_body() -> bytes:
    # SMPP 3.4 §4.7.1, byte by byte: no protocol_id, priority, times, sm_length, short_message.
    return (b"CMT\x00" + b"\x01\x01" + b"27820000001\x00" + b"\x05\x00" + b"smsgw\x00"
            + b"\x04" + b"\x00" + b"\x00"  # esm_class, registered_delivery, data_coding
            + pdu.encode_tlv(pdu.RECEIPTED_MESSAGE_ID, b"1A2B\x00")
            + pdu.encode_tlv(pdu.MESSAGE_STATE, b"\x02")
            + pdu.encode_tlv(pdu.MESSAGE_PAYLOAD, b"id:1A2B stat:DELIVRD"))


def test_data_sm_body_decodes_with_its_own_layout_and_payload_in_the_tlv() -> None:
    sm = ShortMessage.decode_data_sm(_data_sm_body())
    assert (sm.service_type, sm.source_addr_ton, sm.source_addr_npi, sm.source_addr) == (
        "CMT", 1, 1, "27820000001")
    assert (sm.dest_addr_ton, sm.dest_addr_npi, sm.destination_addr) == (5, 0, "smsgw")
    assert (sm.esm_class, sm.registered_delivery, sm.data_coding) == (0x04, 0, 0)
    assert sm.short_message == b"" and sm.payload() == b"id:1A2B stat:DELIVRD"
    assert sm.tlvs[pdu.RECEIPTED_MESSAGE_ID] == b"1A2B\x00"
    assert sm.tlvs[pdu.MESSAGE_STATE] == b"\x02"


def test_data_sm_body_round_trips() -> None:
    sm = ShortMessage.decode_data_sm(_data_sm_body())
    assert sm.encode_data_sm() == _data_sm_body()


@pytest.mark.parametrize("cut", [0, 3, 5, 17, 20, 27, 28, 30])
def test_truncated_data_sm_body_raises_pdu_error(cut: int) -> None:
    with pytest.raises(PduError):
        ShortMessage.decode_data_sm(_data_sm_body()[:cut])


def test_data_sm_and_alert_notification_have_their_spec_ids() -> None:
    assert (pdu.DATA_SM, pdu.DATA_SM_RESP, pdu.ALERT_NOTIFICATION) == (
        0x00000103, 0x80000103, 0x00000102)


MODES: list[SplitMode] = ["udh8", "udh16", "sar", "payload"]


def _random_prototype(rng: random.Random) -> ShortMessage:
    def text(n: int) -> str:
        return "".join(chr(rng.randrange(1, 256)) for _ in range(rng.randrange(n)))

    octet = functools.partial(rng.randrange, 256)
    return ShortMessage(
        source_addr=text(21), source_addr_ton=octet(), source_addr_npi=octet(),
        dest_addr_ton=octet(), dest_addr_npi=octet(), service_type=text(6),
        protocol_id=octet(), priority_flag=octet(), schedule_delivery_time=text(17),
        validity_period=rng.choice(["", "000002000000000R", text(17)]),
        registered_delivery=octet(), replace_if_present_flag=octet(),
        sm_default_msg_id=octet())


def test_submit_template_body_equals_the_short_message_encoding_for_generated_messages() -> None:
    rng = random.Random(13)
    for _ in range(200):
        prototype = _random_prototype(rng)
        template = pdu.SubmitTemplate(prototype)
        for _ in range(20):
            mode: SplitMode = rng.choice(MODES)
            content = "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(32, 0x2FFF)]))
                              for _ in range(rng.randrange(1, 400)))
            to = "".join(chr(rng.randrange(1, 256)) for _ in range(rng.randrange(21)))
            for part in split(content, mode, rng.randrange(0x10000)):
                tlvs = dict(part.tlvs)
                if rng.random() < 0.2:
                    tlvs[rng.randrange(0x10000)] = rng.randbytes(rng.randrange(10))
                # A message's own validity_period (None: the channel's, the prototype's)
                validity = rng.choice([None, "", "260102030405000+"])
                expected = replace(prototype, destination_addr=to, esm_class=part.esm_class,
                                   data_coding=part.data_coding,
                                   short_message=part.short_message, tlvs=tlvs,
                                   validity_period=(prototype.validity_period
                                                    if validity is None else validity)).encode()
                assert template.body(to, part.esm_class, part.data_coding,
                                     part.short_message, tlvs,
                                     validity_period=validity) == expected


def test_submit_template_with_a_messages_own_source_equals_its_short_message_encoding() -> None:
    rng = random.Random(14)
    for _ in range(200):
        prototype = _random_prototype(rng)
        template = pdu.SubmitTemplate(prototype)
        source = _random_prototype(rng)  # another source address, TON and NPI
        head = template.source(source.source_addr, source.source_addr_ton,
                               source.source_addr_npi)
        expected = replace(prototype, source_addr=source.source_addr,
                           source_addr_ton=source.source_addr_ton,
                           source_addr_npi=source.source_addr_npi, destination_addr="27820000001",
                           short_message=b"hi").encode()
        assert template.body("27820000001", 0, 0, b"hi", {}, head=head) == expected


def test_submit_template_refuses_a_short_message_over_254_bytes() -> None:
    template = pdu.SubmitTemplate(ShortMessage())
    with pytest.raises(ValueError):
        template.body("1", 0, 0, b"x" * 255, {})


def test_generated_short_messages_round_trip_and_every_cut_is_a_pdu_error() -> None:
    rng = random.Random(13)
    for _ in range(300):
        sm = replace(_random_prototype(rng),
                     destination_addr=rng.choice(["", "27820000001", "\x01\xff"]),
                     esm_class=rng.randrange(256), data_coding=rng.randrange(256),
                     short_message=rng.randbytes(rng.randrange(255)),
                     tlvs={rng.randrange(0x10000): rng.randbytes(rng.randrange(5))
                           for _ in range(rng.randrange(3))})
        body = sm.encode()
        assert ShortMessage.decode(body) == sm
        # where the TLVs start the body is whole; any shorter cut loses a field
        whole = len(body) - sum(4 + len(v) for v in sm.tlvs.values())
        for cut in range(whole):
            with pytest.raises(PduError, match="truncated"):
                ShortMessage.decode(body[:cut])
