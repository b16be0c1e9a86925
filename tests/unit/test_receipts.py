"""Delivery receipts: tolerant text/TLV parsing, final states, SMSC id normalising/matching."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime

import pytest

from worker.smpp import receipts
from worker.smpp.pdu import MESSAGE_STATE, RECEIPTED_MESSAGE_ID
from worker.smpp.receipts import (
    Receipt,
    final_state,
    is_receipt,
    normalise_smsc_id,
    parse_receipt,
    receipt_id_candidates,
    receipt_id_forms,
    receipt_ids,
    spelled_twice,
)

STANDARD = ("id:7f3a9c sub:001 dlvrd:001 submit date:2401311530 done date:2401311532 "
            "stat:DELIVRD err:000 text:Hello there")


def parsed(text: str, tlvs: dict[int, bytes] | None = None) -> Receipt:
    receipt = parse_receipt(text, tlvs or {})
    assert receipt is not None
    return receipt


# --- the text form ---------------------------------------------------------------------------


def test_standard_receipt_text_is_parsed() -> None:
    assert parsed(STANDARD) == Receipt(
        message_id="7f3a9c", stat="DELIVRD", err="000",
        submit_date=datetime(2024, 1, 31, 15, 30, tzinfo=UTC),
        done_date=datetime(2024, 1, 31, 15, 32, tzinfo=UTC),
        sub="001", dlvrd="001", text="Hello there", message_state=None,
    )


def test_receipt_with_12_digit_dates_is_parsed() -> None:
    r = parsed("id:1 submit date:240131153007 done date:241231235959 stat:EXPIRED err:001")
    assert r.submit_date == datetime(2024, 1, 31, 15, 30, 7, tzinfo=UTC)
    assert r.done_date == datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert r.stat == "EXPIRED"


@pytest.mark.parametrize("err", ["0x1A", "ABC", "-1", "000", "1A2"])
def test_non_decimal_err_is_kept_as_a_string(err: str) -> None:
    # aiosmpplib's int(err) raises ValueError on all but the decimal ones.
    assert parsed(f"id:9 stat:UNDELIV err:{err}").err == err


def test_fields_in_any_order_and_any_case_are_parsed() -> None:
    r = parsed("Stat:REJECTD ERR:0x0B Done Date:2402020202 ID:ab-01 Sub:001 DLVRD:000")
    assert (r.message_id, r.stat, r.err, r.sub, r.dlvrd) == ("ab-01", "REJECTD", "0x0B",
                                                             "001", "000")
    assert r.done_date == datetime(2024, 2, 2, 2, 2, tzinfo=UTC)


def test_unknown_fields_are_ignored() -> None:
    r = parsed("id:55 vendor:x-y mccmnc:310260 stat:DELIVRD price:0.01 err:000")
    assert (r.message_id, r.stat, r.err) == ("55", "DELIVRD", "000")


def test_missing_fields_are_none() -> None:
    r = parsed("id:55")
    assert (r.stat, r.err, r.sub, r.dlvrd, r.text, r.submit_date, r.done_date) == (
        "UNKNOWN", "", None, None, None, None, None)


@pytest.mark.parametrize("key", ["submit_date", "submitdate", "SUBMIT DATE", "submit  date"])
def test_date_keys_are_read_however_the_smsc_spaces_them(key: str) -> None:
    r = parsed(f"id:1 {key}:2403040506 stat:DELIVRD")
    assert r.submit_date == datetime(2024, 3, 4, 5, 6, tzinfo=UTC)
    assert r.stat == "DELIVRD"


def test_text_field_is_the_rest_of_its_line() -> None:
    r = parsed("id:1 text:hi stat:fake err:x, it says\nstat:UNDELIV err:042")
    assert r.text == "hi stat:fake err:x, it says"
    assert (r.stat, r.err) == ("UNDELIV", "042")


def test_fields_after_a_text_field_in_the_middle_are_found() -> None:
    r = parsed("id:77 sub:001 dlvrd:000 submit date:2401311530 done date:2401311532 "
               "text:Hello stat:UNDELIV err:034")
    assert (r.message_id, r.text, r.stat, r.err) == ("77", "Hello", "UNDELIV", "034")
    assert final_state(r) == "undelivered"


def test_a_text_field_that_is_last_keeps_words_that_look_like_fields() -> None:
    r = parsed("id:77 stat:DELIVRD err:000 text:my stat:ok err:none")
    assert (r.stat, r.err, r.text) == ("DELIVRD", "000", "my stat:ok err:none")


def test_a_field_repeated_later_does_not_override_the_first() -> None:
    assert parsed("id:first stat:DELIVRD id:second").message_id == "first"


@pytest.mark.parametrize(
    "value",
    ["0000000000", "000000000000", "2413011200", "2401321200", "2401012460", "240101120061",
     "24010112", "24010112000", "abcdefghij",
     "\uff12\uff14" * 5, ""],  # the last but one: full-width digits
)
def test_bad_dates_become_none(value: str) -> None:
    r = parsed(f"id:1 submit date:{value} done date:{value} stat:DELIVRD")
    assert (r.submit_date, r.done_date, r.stat) == (None, None, "DELIVRD")


@pytest.mark.parametrize(
    ("stat", "expected"),
    [("delivrd", "DELIVRD"), ("Delivered", "DELIVRD"), ("UNDELIVERABLE", "UNDELIV"),
     ("rejected", "REJECTD"), ("ACCEPTED", "ACCEPTD"), ("ENROUTE", "ENROUTE"),
     ("WEIRD", "WEIRD")],
)
def test_stat_is_upper_cased_and_common_spellings_are_folded(stat: str, expected: str) -> None:
    assert parsed(f"id:1 stat:{stat}").stat == expected


# --- the TLV form ----------------------------------------------------------------------------


def test_tlv_only_receipt_takes_its_state_from_message_state() -> None:
    r = parsed("", {RECEIPTED_MESSAGE_ID: b"0A1B\x00", MESSAGE_STATE: b"\x05"})
    assert (r.message_id, r.stat, r.message_state, r.err) == ("0A1B", "UNDELIV", 5, "")
    assert final_state(r) == "undelivered"


def test_receipted_message_id_tlv_is_preferred_over_the_text_id() -> None:
    r = parsed(STANDARD, {RECEIPTED_MESSAGE_ID: b"abc123\x00"})
    assert r.message_id == "abc123"
    assert r.stat == "DELIVRD"


def test_receipted_message_id_is_a_c_string_cut_at_nul() -> None:
    assert parsed("", {RECEIPTED_MESSAGE_ID: b" 42\x00garbage"}).message_id == "42"


def test_an_empty_receipted_message_id_falls_back_to_the_text_id() -> None:
    assert parsed("id:77 stat:DELIVRD", {RECEIPTED_MESSAGE_ID: b"\x00"}).message_id == "77"


def test_a_message_state_of_the_wrong_length_is_ignored() -> None:
    r = parsed("id:1", {MESSAGE_STATE: b"\x00\x02"})
    assert (r.message_state, r.stat) == (None, "UNKNOWN")


def test_text_stat_wins_over_message_state() -> None:
    r = parsed("id:1 stat:EXPIRED", {MESSAGE_STATE: b"\x02"})
    assert (r.stat, r.message_state, final_state(r)) == ("EXPIRED", 2, "expired")


# --- no receipt ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", "hello, this is a reply from a phone", "stat:DELIVRD err:000", "id: stat:DELIVRD",
     "uuid:123 stat:DELIVRD", "\x00\x01\x02", "id", ":::", "text:id:5"],
)
def test_text_without_an_id_and_no_tlv_is_not_a_receipt(text: str) -> None:
    assert parse_receipt(text, {}) is None


def test_parse_receipt_never_raises_on_random_input() -> None:
    rng = random.Random(20240131)
    pieces = ["id:", "stat:", "err:", "submit date:", "done date:", "text:", "sub:", " ", "\n",
              "DELIVRD", "0x1A", "2401311530", "240131153007", "\x00", "::", "é", "€"]
    for i in range(3000):
        if i % 2:
            text = rng.randbytes(rng.randrange(0, 200)).decode("latin-1")
        else:
            text = "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 30)))
        tlvs = {tag: rng.randbytes(rng.randrange(0, 4))
                for tag in (RECEIPTED_MESSAGE_ID, MESSAGE_STATE, 0x0423) if rng.random() < 0.5}
        receipt = parse_receipt(text, tlvs)
        if receipt is not None:
            assert receipt.message_id
            final_state(receipt)
            receipt_id_candidates(receipt.message_id, "auto")


# --- esm_class -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("esm_class", "expected"),
    [(0x04, True), (0x44, True), (0x20, True), (0x08, True), (0x00, False), (0x40, False),
     (0x03, False), (0x10, False), (0x18, False), (0x0C, False)],
)
def test_is_receipt_reads_the_message_type_bits(esm_class: int, expected: bool) -> None:
    assert is_receipt(esm_class) is expected


# --- final states ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stat", "expected"),
    [("DELIVRD", "delivered"), ("UNDELIV", "undelivered"), ("EXPIRED", "expired"),
     ("REJECTD", "rejected"), ("DELETED", "undelivered"), ("ENROUTE", None), ("ACCEPTD", None),
     ("UNKNOWN", None)],
)
def test_final_state_maps_stats_to_lifecycle_names(stat: str, expected: str | None) -> None:
    assert final_state(parsed(f"id:1 stat:{stat}")) == expected


def test_an_unknown_stat_defers_to_message_state() -> None:
    r = parsed("id:1 stat:WEIRD", {MESSAGE_STATE: b"\x08"})
    assert final_state(r) == "rejected"
    assert final_state(parsed("id:1 stat:WEIRD")) is None


# --- ids -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0012AB", "12ab"), ("  7F\x00\x00", "7f"), ("0", "0"), ("000", "0"), ("", ""),
     ("\x00abc", ""), ("ABC-001", "abc-001"), (" 0x1A ", "x1a")],
)
def test_normalise_smsc_id(raw: str, expected: str) -> None:
    assert normalise_smsc_id(raw) == expected


@pytest.mark.parametrize(
    ("raw", "fmt", "expected"),
    [
        ("00123", "auto", ["123", "7b", "291"]),  # same, dec->hex, hex->dec
        ("0ABC", "auto", ["abc", "2748"]),  # not decimal: no dec->hex form
        ("a-b", "auto", ["a-b"]),
        ("00123", "same", ["123"]),
        ("123", "hex_to_dec", ["7b"]),  # submit ids hex, receipts decimal
        ("7B", "dec_to_hex", ["123"]),  # submit ids decimal, receipts hex
        ("xyz", "hex_to_dec", []),
        ("0", "auto", ["0"]),
        ("", "auto", []),
        ("1²", "auto", ["1²"]),  # str.isdigit() says yes, int() would raise
    ],
)
def test_receipt_id_candidates(raw: str, fmt: str, expected: list[str]) -> None:
    assert receipt_id_candidates(raw, fmt) == expected


def test_a_hex_submit_id_is_found_from_its_decimal_receipt() -> None:
    submit_id = "1A2B3C4D5E"  # as in submit_sm_resp
    stored = normalise_smsc_id(submit_id)
    receipt = parsed(f"id:{int(submit_id, 16)} stat:DELIVRD")
    for fmt in ("auto", "hex_to_dec"):
        assert stored in receipt_id_candidates(receipt.message_id, fmt)
    assert stored not in receipt_id_candidates(receipt.message_id, "same")


def test_a_decimal_submit_id_is_found_from_its_hex_receipt() -> None:
    stored = normalise_smsc_id("0000123456789")
    receipt_id = format(123456789, "X")
    for fmt in ("auto", "dec_to_hex"):
        assert stored in receipt_id_candidates(receipt_id, fmt)


def test_an_overlong_id_is_not_converted() -> None:
    raw = "9" * 5000  # int() of this raises ValueError (max str digits)
    assert receipt_id_candidates(raw, "auto") == [raw]


def test_the_fast_path_for_the_standard_layout_reads_what_the_tolerant_scan_reads() -> None:
    from worker.smpp.receipts import _tolerant_receipt

    rng = random.Random(11)
    for _ in range(500):
        text = (f"id:{rng.getrandbits(40):x} sub:001 dlvrd:00{rng.randint(0, 1)} "
                f"submit date:{rng.randint(10**9, 10**10 - 1)} "
                f"done date:{rng.randint(10**11, 10**12 - 1)} "
                f"stat:{rng.choice(['DELIVRD', 'UNDELIV', 'EXPIRED', 'REJECTD'])} "
                f"err:{rng.choice(['000', '0x1A', 'ABC'])}")
        if rng.random() < 0.7:
            text += " text:" + "".join(rng.choice("ab :c") for _ in range(rng.randint(0, 20)))
        if rng.random() < 0.2:
            text += "\r\nmore:stuff"
        tlvs = rng.choice([{}, {RECEIPTED_MESSAGE_ID: b"abc\x00", MESSAGE_STATE: b"\x02"}])
        assert parse_receipt(text, tlvs) == _tolerant_receipt(text, tlvs), text


def test_auto_forms_name_the_convention_each_assumes() -> None:
    assert receipt_id_forms("10", "auto") == {"same": "10", "hex_to_dec": "a",
                                              "dec_to_hex": "16"}
    assert receipt_id_forms("A", "auto") == {"same": "a", "dec_to_hex": "10"}
    assert receipt_id_forms("msg-1", "auto") == {"same": "msg-1"}
    assert receipt_id_forms("A", "hex_to_dec") == {}  # not a decimal id: no form


@pytest.mark.parametrize(
    ("tlv", "text", "expected"),
    [("7b", "123", True), ("123", "7B", True), ("7b", "7b", False), ("7b", "124", False),
     ("7b", None, False)],
)
def test_a_receipt_spells_its_id_twice_when_tlv_and_text_are_one_number_in_two_bases(
    tlv: str, text: str | None, expected: bool,
) -> None:
    body = f"id:{text} stat:DELIVRD" if text else "stat:DELIVRD"
    r = parsed(body, {RECEIPTED_MESSAGE_ID: tlv.encode() + b"\x00"})
    assert r.message_id == tlv
    assert spelled_twice(r) is expected


# --- the parser equals the one before it skipped the dict of fields ----------------------------


def previous_parse_receipt(text: str, tlvs: dict[int, bytes]) -> Receipt | None:
    """parse_receipt as it was: the standard layout's match made into a dict of fields first."""
    standard = re.compile(r"id:(\S+) sub:(\S+) dlvrd:(\S+) submit date:(\d+) done date:(\d+) "
                          r"stat:(\S+) err:(\S+)(?: text:([^\r\n]*))?\Z")
    keys = ("id", "sub", "dlvrd", "submit date", "done date", "stat", "err", "text")
    m = standard.match(text)
    if m is None:
        fields = receipts._fields_tolerant(text)
    else:
        fields = {k: v for k, v in zip(keys, m.groups(), strict=True) if v is not None}
        if "text" in fields:
            fields["text"] = fields["text"].strip()
    tlv_id = receipts._c_string(tlvs.get(RECEIPTED_MESSAGE_ID, b""))
    message_id = tlv_id or fields.get("id", "")
    if not message_id:
        return None
    state = receipts._message_state(tlvs.get(MESSAGE_STATE))
    stat = receipts._stat(fields.get("stat")) or receipts._STATE_NAMES.get(state or 0, "UNKNOWN")
    return Receipt(
        message_id=message_id, stat=stat, err=fields.get("err", ""),
        submit_date=receipts._date(fields.get("submit date")),
        done_date=receipts._date(fields.get("done date")),
        sub=fields.get("sub"), dlvrd=fields.get("dlvrd"), text=fields.get("text"),
        message_state=state, text_id=fields.get("id") if tlv_id else None,
    )


VARIANTS = [
    STANDARD, STANDARD.replace(" text:Hello there", ""), STANDARD + " text:more",
    STANDARD.replace("Hello there", ""), STANDARD.replace("Hello there", "  padded  "),
    STANDARD.replace("Hello there", "two\nlines"), STANDARD.replace("2401311530", "240131153007"),
    STANDARD.replace("2401311530", "24013115x0"), STANDARD.replace("sub:001", "sub:"),
    STANDARD.replace("sub:001", "sub:0\xa01"), STANDARD.replace("err:000 ", "err:000  "),
    STANDARD.replace("id:7f3a9c", "id:a:b:c"), STANDARD.replace("id:7f3a9c", "ID:7f3a9c"),
    STANDARD.replace("submit date", "submit_date"), STANDARD.replace("stat:DELIVRD", "stat:"),
    STANDARD.replace("stat:DELIVRD", "stat:delivered"), STANDARD + "\n", " " + STANDARD,
    "id:1 text:hi stat:fake err:x, it says\nstat:UNDELIV err:042",
    "id:77 stat:DELIVRD err:000 text:my stat:ok err:none",
    "id:55 vendor:x-y mccmnc:310260 stat:DELIVRD price:0.01 err:000",
    "id:1 submit date:240131153007 done date:241231235959 stat:EXPIRED err:001",
    "Stat:REJECTD ERR:0x0B Done Date:2402020202 ID:ab-01 Sub:001 DLVRD:000",
    "id:first stat:DELIVRD id:second", "id:9 stat:UNDELIV err:0x1A", "id:55", "", "id: stat:x",
]
TLV_CHOICES: list[dict[int, bytes]] = [
    {}, {RECEIPTED_MESSAGE_ID: b"0A1B\x00", MESSAGE_STATE: b"\x05"},
    {RECEIPTED_MESSAGE_ID: b"\x00"}, {MESSAGE_STATE: b"\x02"},
]


def mutated(rng: random.Random) -> str:
    """A standard receipt with a few random edits: whitespace of several kinds, digits of other
    scripts, characters cut, keys in upper case."""
    text = (f"id:{rng.getrandbits(40):x} sub:00{rng.randint(0, 9)} dlvrd:001 submit date:"
            f"{rng.randrange(10**9, 10**12)} done date:{rng.randrange(10**9, 10**12)} "
            f"stat:{rng.choice(['DELIVRD', 'UNDELIV', 'x'])} err:{rng.randrange(1000):03d}"
            + rng.choice(["", " text:", " text:Hi there", " text: x\ty "]))
    noise = [" ", "  ", "\t", "\n", "\r", "\xa0", ":", "\u0663", "", "x"]
    for _ in range(rng.randrange(4)):
        at = rng.randrange(len(text) + 1)
        if rng.random() < 0.5:
            text = text[:at] + rng.choice(noise) + text[at:]
        elif rng.random() < 0.5:
            text = text[:at] + text[at + 1:]
        else:
            text = text[:at] + text[at:].upper()
    return text


@pytest.mark.parametrize("text", VARIANTS)
@pytest.mark.parametrize("tlvs", TLV_CHOICES)
def test_receipt_variants_parse_as_they_did(text: str, tlvs: dict[int, bytes]) -> None:
    assert parse_receipt(text, tlvs) == previous_parse_receipt(text, tlvs)


def test_generated_receipts_parse_as_they_did() -> None:
    rng = random.Random(13)
    for _ in range(5000):
        text, tlvs = mutated(rng), rng.choice(TLV_CHOICES)
        assert parse_receipt(text, tlvs) == previous_parse_receipt(text, tlvs), text


def test_receipt_ids_are_the_forms_and_spelled_twice_of_a_receipt() -> None:
    rng = random.Random(13)
    ids = ["7b", "123", "0 5", " 007 ", "00", "0", "0x1F", "A", "msg-1", "12\x00junk", "ff" * 40,
           "1" * 70, "\u0663", "", " "]
    ids += [format(rng.getrandbits(48), rng.choice(["x", "d", "X"])) for _ in range(300)]
    for _ in range(3000):
        tlv_id, text_id = rng.choice(ids), rng.choice(ids)
        if rng.random() < 0.3:  # the text spells the TLV's id in the other base
            same = normalise_smsc_id(tlv_id)
            text_id = rng.choice(list(receipt_id_forms(same, "auto").values()) or [""])
        receipt = Receipt(message_id=tlv_id or "x", stat="DELIVRD", err="",
                          text_id=rng.choice([None, text_id]))
        for id_format in ("auto", "same", "hex_to_dec", "dec_to_hex"):
            expected = (receipt_id_forms(receipt.message_id, id_format), spelled_twice(receipt))
            assert receipt_ids(receipt, id_format) == expected, (receipt, id_format)


def core_of(receipt: Receipt | None) -> receipts.ReceiptCore | None:
    if receipt is None:
        return None
    return (receipt.message_id, receipt.text_id, receipt.stat, receipt.err,
            receipt.message_state)


def test_receipt_core_is_the_fields_parse_receipt_reads() -> None:
    rng = random.Random(17)
    texts = [STANDARD, "", "stat:DELIVRD", "ID:5 STAT:delivered Err:1", *VARIANTS]
    texts += [mutated(rng) for _ in range(3000)]
    texts += [rng.randbytes(rng.randrange(0, 120)).decode("latin-1") for _ in range(500)]
    for text in texts:
        for tlvs in TLV_CHOICES:
            assert receipts.receipt_core(text, tlvs) == core_of(parse_receipt(text, tlvs)), text


def test_final_state_of_and_ids_of_read_as_final_state_and_receipt_ids() -> None:
    rng = random.Random(19)
    for _ in range(2000):
        text, tlvs = mutated(rng), rng.choice(TLV_CHOICES)
        receipt = parse_receipt(text, tlvs)
        if receipt is None:
            continue
        assert receipts.final_state_of(receipt.stat, receipt.message_state) == \
            final_state(receipt)
        for id_format in ("auto", "same", "hex_to_dec", "dec_to_hex"):
            assert receipts.ids_of(receipt.message_id, receipt.text_id, id_format) == \
                receipt_ids(receipt, id_format)
