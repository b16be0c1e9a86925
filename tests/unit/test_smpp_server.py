"""Pure parts of the SMPP server: receipt text, registered_delivery, the bind slow-down,
submit_sm refusals, password hashing, and the receipt stream's one key spelling."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.smpp_server.concat import ESME_RINVPARLEN, Concat, part_of
from gateway.smpp_server.receipts import receipt_pdu_body, receipt_text
from gateway.smpp_server.session import auth_delay
from gateway.smpp_server.submit import (
    ESME_RINVESMCLASS,
    ESME_RINVEXPIRY,
    ESME_RINVSCHED,
    ESME_RINVSRCADR,
    Refused,
    notify_flags,
    to_message,
)
from gateway.smpp_server.users import hash_password, password_matches
from gateway.validate import Rules
from worker import store
from worker.config import settings_from_dict
from worker.routing import RouteTable
from worker.senders import Senders
from worker.smpp.pdu import (
    ESME_RINVDSTADR,
    ESME_RINVMSGLEN,
    MESSAGE_STATE,
    SAR_MSG_REF_NUM,
    SAR_SEGMENT_SEQNUM,
    SAR_TOTAL_SEGMENTS,
    ShortMessage,
)
from worker.store import NewMessage, scripts
from worker.store.smpp_server import RECEIPTS_PREFIX, receipts_key

RULES = Rules(default_channel="sim", default_country_code="27", max_segments=10,
              channels={"sim": "udh8"})


def test_receipt_text_has_the_standard_fields() -> None:
    text = receipt_text({"id": "01ABC", "status": "delivered", "submitted": "1700000000000",
                         "at": "1700000060000", "err": "", "text": "hello world, a long text"})
    assert text == ("id:01ABC sub:001 dlvrd:001 submit date:2311142213 done date:2311142214 "
                    "stat:DELIVRD err:000 text:hello world, a long ")


def test_receipt_text_of_a_failure_says_undeliv_and_nothing_delivered() -> None:
    text = receipt_text({"id": "x", "status": "undelivered", "submitted": "0", "at": "0",
                         "err": "11", "text": ""})
    assert "dlvrd:000" in text and "stat:UNDELIV err:011" in text


def test_a_message_failed_as_expired_is_receipted_expired() -> None:
    # Its validity (or max age) ended before the SMSC accepted it: no SMSC receipt will come.
    fields = {"id": "x", "status": "failed", "code": "Expired", "submitted": "0", "at": "0"}
    assert "stat:EXPIRED err:000" in receipt_text(fields)
    sm = ShortMessage.decode(receipt_pdu_body(fields))
    assert sm.tlvs[MESSAGE_STATE] == bytes((3,))


def test_registered_delivery_becomes_what_the_client_hears_of() -> None:
    assert [notify_flags(rd) for rd in (0, 1, 2, 0x10, 0x11)] == ["", "f", "x", "i", "fi"]


def test_failed_binds_are_slowed_after_the_free_ones_up_to_a_ceiling() -> None:
    assert [auth_delay(n, 3, 4.0) for n in (1, 3, 4, 5, 6, 7, 50)] == [0, 0, 0.5, 1, 2, 4, 4]


def test_a_password_matches_only_its_own_hash() -> None:
    stored = hash_password("s3cret")
    assert password_matches("s3cret", stored)
    assert not password_matches("s3creT", stored)
    assert not password_matches("s3cret", "garbage")


def test_a_submit_sm_becomes_a_message_through_the_smpp_door() -> None:
    sm = ShortMessage(source_addr="ACME", destination_addr="0821234567",
                      short_message=b"hi", registered_delivery=1)
    msg = to_message(sm, api_id="id1", account="acme", rules=RULES, channels=None,
                     senders=Senders.of(["ACME"]))
    assert isinstance(msg, NewMessage)
    assert (msg.to, msg.channel, msg.content, msg.door, msg.notify, msg.source,
            msg.sender) == ("27821234567", "sim", "hi", "smpp", "f", "ACME", "ACME")


@pytest.mark.parametrize(("source_addr", "senders", "sender"), [
    ("", [], ""),  # none: the channel's source_addr
    ("ACME", ["*"], "ACME"),
    ("+447012345678", ["4470*"], "+447012345678"),
])
def test_a_submit_sms_source_addr_is_its_sender(
    source_addr: str, senders: list[str], sender: str
) -> None:
    sm = ShortMessage(source_addr=source_addr, destination_addr="0821234567", short_message=b"x")
    msg = to_message(sm, api_id="i", account="a", rules=RULES, channels=None,
                     senders=Senders.of(senders))
    assert isinstance(msg, NewMessage) and msg.sender == sender


@pytest.mark.parametrize(("source_addr", "senders", "reason"), [
    ("ACME", [], "sender 'ACME' is not allowed"),  # no list: no sender may be chosen
    ("Other", ["ACME", "4470*"], "sender 'Other' is not allowed"),
    ("447112345678", ["4470*"], "sender '447112345678' is not allowed"),
    ("TooLongSender", ["*"], "is not a sender"),
])
def test_a_source_addr_the_user_may_not_use_is_esme_rinvsrcadr(
    source_addr: str, senders: list[str], reason: str
) -> None:
    sm = ShortMessage(source_addr=source_addr, destination_addr="0821234567", short_message=b"x")
    got = to_message(sm, api_id="i", account="a", rules=RULES, channels=None,
                     senders=Senders.of(senders))
    assert isinstance(got, Refused) and got.status == ESME_RINVSRCADR and reason in got.reason


def test_submit_sm_refusals_carry_their_smpp_status() -> None:
    def status(**fields: object) -> int:
        sm = ShortMessage(**{"destination_addr": "27821234567", "short_message": b"x",
                             **fields})  # type: ignore[arg-type]
        got = to_message(sm, api_id="i", account="a", rules=RULES, channels=None)
        assert isinstance(got, Refused)
        return got.status

    assert status(destination_addr="12ab") == ESME_RINVDSTADR
    assert status(short_message=b"") == ESME_RINVMSGLEN
    assert status(schedule_delivery_time="261301000000000+") == ESME_RINVSCHED  # month 13
    assert status(validity_period="000001000000100R") == ESME_RINVEXPIRY  # R with tenths
    assert status(esm_class=0x40) == ESME_RINVESMCLASS


NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY_MS = 86_400_000


def _timed(schedule: str = "", validity: str = "") -> NewMessage | Refused:
    sm = ShortMessage(destination_addr="27821234567", short_message=b"x",
                      schedule_delivery_time=schedule, validity_period=validity)
    return to_message(sm, api_id="i", account="a", rules=RULES, channels=None, now=NOW)


def test_a_submit_sm_with_a_schedule_and_a_validity_carries_both_as_epoch_ms() -> None:
    got = _timed("000001000000000R", "260103010000004+")  # in a day; Jan 3, 01:00 at +1 h
    assert isinstance(got, NewMessage)
    assert (got.scheduled_at, got.valid_until) == (NOW + DAY_MS, NOW + 2 * DAY_MS)
    got = _timed(validity="000000010000000R")
    assert isinstance(got, NewMessage)
    assert (got.scheduled_at, got.valid_until) == (0, NOW + 3600_000)


def test_a_schedule_in_the_past_means_now() -> None:
    got = _timed("251231230000000+")
    assert isinstance(got, NewMessage) and got.scheduled_at == 0


@pytest.mark.parametrize(("schedule", "validity", "expected"), [
    ("2601010000000", "", ESME_RINVSCHED),  # wrong length
    ("000031000000000R", "", ESME_RINVSCHED),  # 31 days ahead: over the 30-day bound
    ("", "000008000000000R", ESME_RINVEXPIRY),  # 8 days: longer than the retention
    ("", "251231000000000+", ESME_RINVEXPIRY),  # already ended
    ("000002000000000R", "000001000000000R", ESME_RINVEXPIRY),  # ends before its time
    ("", "0000010000000a0R", ESME_RINVEXPIRY),  # a letter
    ("", "000001000000001R", ESME_RINVEXPIRY),  # R with quarter hours
])
def test_a_bad_schedule_or_validity_is_refused_with_its_status(
    schedule: str, validity: str, expected: int,
) -> None:
    got = _timed(schedule, validity)
    assert isinstance(got, Refused) and got.status == expected


def test_a_udh_part_is_read_whatever_other_elements_stand_around_its_concat_element() -> None:
    def read(udh: bytes) -> object:
        return part_of(ShortMessage(esm_class=0x40, short_message=udh + b"text"))

    assert read(bytes((5, 0x00, 3, 7, 3, 2))) == (Concat(8, 7, 3, 2), b"text")
    assert read(bytes((12, 0x24, 1, 0, 0x08, 4, 1, 44, 4, 4, 0x25, 1, 0))) == (
        Concat(16, 300, 4, 4), b"text")
    # a UDH without a concatenation element (here a national language shift alone, 0x24):
    # refused, not sent as text with its header dropped
    got = read(bytes((3, 0x24, 1, 0)))
    assert isinstance(got, Refused) and got.status == ESME_RINVESMCLASS


def test_sar_tlvs_make_a_part_and_must_come_together() -> None:
    sar = {SAR_MSG_REF_NUM: b"\x01\x2c", SAR_TOTAL_SEGMENTS: b"\x03",
           SAR_SEGMENT_SEQNUM: b"\x01"}
    assert part_of(ShortMessage(short_message=b"hi", tlvs=sar)) == (Concat(16, 300, 3, 1),
                                                                     b"hi")
    half = {SAR_MSG_REF_NUM: b"\x01\x2c", SAR_SEGMENT_SEQNUM: b"\x01"}
    got = part_of(ShortMessage(short_message=b"hi", tlvs=half))
    assert isinstance(got, Refused) and got.status == ESME_RINVPARLEN


def test_parts_numbered_outside_their_total_or_with_a_broken_header_are_refused() -> None:
    for udh in (bytes((5, 0x00, 3, 7, 3, 0)), bytes((5, 0x00, 3, 7, 3, 4)),
                bytes((5, 0x00, 3, 7, 0, 1)), bytes((9, 0x00, 3))):
        got = part_of(ShortMessage(esm_class=0x40, short_message=udh + b"x"))
        assert isinstance(got, Refused) and got.status == ESME_RINVESMCLASS, udh


def test_a_part_of_more_parts_than_max_segments_is_refused() -> None:
    sm = ShortMessage(destination_addr="27821234567", esm_class=0x40,
                      short_message=bytes((5, 0x00, 3, 7, 11, 1)) + b"x")
    got = to_message(sm, api_id="i", account="a", rules=RULES, channels=None)
    assert isinstance(got, Refused) and got.status == ESME_RINVMSGLEN


def test_the_transition_lua_writes_the_receipt_stream_the_server_reads() -> None:
    assert receipts_key("acme") == RECEIPTS_PREFIX + "acme"
    assert RECEIPTS_PREFIX == store.MESSAGES + "smpp:rcpt:"
    assert "M .. 'smpp:rcpt:' .. f.account" in scripts.source("record_outcomes")


def test_a_submit_sm_is_number_checked_as_an_http_send_is() -> None:
    # The SMPP server builds its rules from the same settings as the HTTP door (routes off).
    settings = settings_from_dict({"gateway": {"default_channel": "sim",
                                               "number_check": "libphonenumber"},
                                   "channels": {"sim": {}}}, {}, source="test")
    rules = replace(Rules.from_settings(settings), routes=RouteTable())
    # Long enough for the plain length check, but no South African number starts 270.
    sm = ShortMessage(destination_addr="27000000000", short_message=b"x")
    got = to_message(sm, api_id="i", account="a", rules=rules, channels=None)
    assert isinstance(got, Refused) and got.status == ESME_RINVDSTADR
