"""Encoding and segmenting: septet/unit counting, splits in every mode, UDH parsing, decoding."""

from __future__ import annotations

import random

import pytest
from aiosmpplib.codec import GSM_BASIC_ENCODE_MAP, GSM_EXTENDED_ENCODE_MAP, GSM7BitCodec

from worker.encoding import (
    Concat,
    Part,
    SplitMode,
    analyse,
    decode_text,
    parse_udh,
    split,
)
from worker.smpp.pdu import (
    MESSAGE_PAYLOAD,
    SAR_MSG_REF_NUM,
    SAR_SEGMENT_SEQNUM,
    SAR_TOTAL_SEGMENTS,
)

MODES: tuple[SplitMode, ...] = ("udh8", "udh16", "sar", "payload")
CONCAT_MODES: tuple[SplitMode, ...] = ("udh8", "udh16", "sar")
EXTENSION = "^{}\\[~]|€\f"
EMOJI = "\U0001f600"  # outside the BMP: a surrogate pair in UTF-16


def body_and_concat(part: Part) -> tuple[bytes, Concat | None]:
    """The text octets of a part and its concatenation info, whatever the mode."""
    concat: Concat | None
    if part.tlvs.get(SAR_MSG_REF_NUM) is not None:
        concat = Concat(int.from_bytes(part.tlvs[SAR_MSG_REF_NUM], "big"),
                        part.tlvs[SAR_TOTAL_SEGMENTS][0], part.tlvs[SAR_SEGMENT_SEQNUM][0], 16)
        return part.short_message, concat
    if part.esm_class & 0x40:
        concat, body = parse_udh(part.short_message)
        return body, concat
    return part.short_message or part.tlvs.get(MESSAGE_PAYLOAD, b""), None


def reassemble(parts: list[Part]) -> str:
    """The text the handset would show: bodies decoded one by one (as it does), joined."""
    return "".join(decode_text(body_and_concat(p)[0], p.data_coding) for p in parts)


def septets(part: Part) -> int:
    """Septets of a gsm7 part's text (unpacked: one per octet, escapes included)."""
    return len(body_and_concat(part)[0])


# --- analyse ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments"), [(1, 1), (160, 1), (161, 2), (153 * 2, 2), (153 * 2 + 1, 3)]
)
def test_plain_gsm_text_is_counted_in_septets_and_split_by_153(length: int, segments: int) -> None:
    info = analyse("a" * length)
    assert (info.encoding, info.units, info.segments) == ("gsm7", length, segments)


def test_160_characters_with_100_euro_signs_need_two_segments() -> None:
    # aiosmpplib counts characters (160 -> one SMS); the euro sign is ESC + 0x65 on the air.
    text = "€" * 100 + "a" * 60
    assert len(text) == 160
    info = analyse(text)
    assert (info.encoding, info.units, info.segments) == ("gsm7", 260, 2)
    assert len(split(text, "udh8", 1)) == 2


@pytest.mark.parametrize("char", list(EXTENSION))
def test_every_extension_character_counts_two_septets(char: str) -> None:
    assert analyse(char).units == 2
    assert analyse(char * 80).segments == 1
    assert analyse(char * 81).segments == 2


@pytest.mark.parametrize(
    ("length", "segments"), [(70, 1), (71, 2), (67 * 2, 2), (67 * 2 + 1, 3)]
)
def test_ucs2_text_is_counted_in_utf16_units_and_split_by_67(length: int, segments: int) -> None:
    info = analyse("ж" * length)
    assert (info.encoding, info.units, info.segments) == ("ucs2", length, segments)


def test_an_emoji_counts_as_two_utf16_units() -> None:
    assert analyse(EMOJI).units == 2
    assert analyse(EMOJI * 35) == analyse("ж" * 70)
    assert analyse(EMOJI * 35 + "a").segments == 2


def test_one_non_gsm_character_makes_the_whole_text_ucs2() -> None:
    info = analyse("a" * 100 + "ç")  # small c cedilla is not in GSM 03.38 (capital is)
    assert (info.encoding, info.units, info.segments) == ("ucs2", 101, 2)
    assert analyse("Ç").encoding == "gsm7"


def test_empty_text_is_one_gsm_segment_of_no_units() -> None:
    assert (analyse("").units, analyse("").segments) == (0, 1)


def test_analyse_agrees_with_encoded_lengths_on_random_texts() -> None:
    # The fast counter against an independent measure: the encoded byte lengths.
    rng = random.Random(1234)
    alphabet = "aZ09 @£$\n" + EXTENSION + "çжé" + EMOJI
    codec = GSM7BitCodec()
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 400)))
        info = analyse(text)
        try:
            expected = ("gsm7", len(codec.encode(text)[0]))
        except UnicodeEncodeError:
            expected = ("ucs2", len(text.encode("utf-16-be")) // 2)
        assert (info.encoding, info.units) == expected, text


# --- split -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("text", ["a" * 160, "€" * 80, "ж" * 70, EMOJI * 35, "hi"])
def test_a_text_that_fits_one_sms_is_one_plain_part_in_every_mode(
    mode: SplitMode, text: str
) -> None:
    [part] = split(text, mode, 7)
    assert part.esm_class == 0
    assert part.tlvs == {}
    assert decode_text(part.short_message, part.data_coding) == text


@pytest.mark.parametrize("mode", CONCAT_MODES)
@pytest.mark.parametrize(
    ("length", "parts"), [(161, 2), (153 * 2, 2), (153 * 2 + 1, 3)]
)
def test_gsm_text_splits_into_the_counted_parts(mode: SplitMode, length: int, parts: int) -> None:
    text = "".join(chr(ord("a") + i % 26) for i in range(length))
    result = split(text, mode, 1)
    if mode == "udh16" and length == 153 * 2:
        parts = 3  # a 7-octet UDH leaves 152 septets per part
    assert len(result) == parts
    assert reassemble(result) == text
    assert all(p.data_coding == 0 for p in result)


@pytest.mark.parametrize(("mode", "size"), [("udh8", 153), ("sar", 153), ("udh16", 152)])
def test_gsm_parts_are_full_up_to_the_segment_size(mode: SplitMode, size: int) -> None:
    parts = split("x" * (size * 3 + 5), mode, 1)
    assert [septets(p) for p in parts] == [size, size, size, 5]


@pytest.mark.parametrize(("mode", "size"), [("udh8", 67), ("sar", 67), ("udh16", 66)])
def test_ucs2_parts_are_full_up_to_the_segment_size(mode: SplitMode, size: int) -> None:
    parts = split("ж" * (size * 2 + 1), mode, 1)
    assert [len(body_and_concat(p)[0]) // 2 for p in parts] == [size, size, 1]
    assert all(p.data_coding == 8 for p in parts)


@pytest.mark.parametrize("mode", CONCAT_MODES)
def test_an_escape_sequence_is_never_split_across_parts(mode: SplitMode) -> None:
    # Sized so that every part boundary would fall between ESC and its code.
    text = ("a" if mode == "udh16" else "") + "€" * 200
    parts = split(text, mode, 1)
    for part in parts:
        body = body_and_concat(part)[0]
        assert not body.endswith(b"\x1b")
        assert "\xa0" not in decode_text(body, 0)  # the codec's mark of a dangling escape
    assert reassemble(parts) == text
    assert septets(parts[0]) == (151 if mode == "udh16" else 152)


@pytest.mark.parametrize("mode", CONCAT_MODES)
def test_an_emoji_is_never_split_across_parts(mode: SplitMode) -> None:
    text = "a" + EMOJI * 100
    parts = split(text, mode, 1)
    for part in parts:
        body = body_and_concat(part)[0]
        assert EMOJI.encode("utf-16-be")[:2] not in body[-2:]  # no dangling high surrogate
        assert "\ufffd" not in decode_text(body, 8)
    assert reassemble(parts) == text


@pytest.mark.parametrize("mode", CONCAT_MODES)
def test_random_texts_round_trip_and_respect_segment_sizes(mode: SplitMode) -> None:
    rng = random.Random(99)
    alphabet = "abc €[" + EMOJI + "ж"
    for _ in range(200):
        text = "".join(rng.choice(alphabet[: rng.choice((6, 9))]) for _ in range(400))
        info = analyse(text)
        parts = split(text, mode, 5)
        assert reassemble(parts) == text
        units = 8 if info.encoding == "gsm7" else 16
        limit = {"gsm7": 153, "ucs2": 67}[info.encoding] - (mode == "udh16")
        assert all(len(body_and_concat(p)[0]) * 8 // units <= limit for p in parts)
        if mode != "udh16":
            assert len(parts) == info.segments


def test_udh8_parts_carry_an_8_bit_reference_and_sequence() -> None:
    parts = split("x" * 400, "udh8", 0x1FF)
    assert [p.short_message[:6] for p in parts] == [
        bytes((5, 0x00, 3, 0xFF, 3, seq)) for seq in (1, 2, 3)
    ]
    assert all(p.esm_class == 0x40 and p.tlvs == {} for p in parts)


def test_udh16_parts_carry_a_16_bit_reference_and_sequence() -> None:
    parts = split("x" * 400, "udh16", 0x12345)
    assert [p.short_message[:7] for p in parts] == [
        bytes((6, 0x08, 4, 0x23, 0x45, 3, seq)) for seq in (1, 2, 3)
    ]
    assert all(p.esm_class == 0x40 for p in parts)


def test_sar_parts_carry_tlvs_and_no_udh() -> None:
    parts = split("x" * 200, "sar", 0x12345)
    assert [p.tlvs for p in parts] == [
        {SAR_MSG_REF_NUM: b"\x23\x45", SAR_TOTAL_SEGMENTS: b"\x02", SAR_SEGMENT_SEQNUM: bytes((s,))}
        for s in (1, 2)
    ]
    assert all(p.esm_class == 0 for p in parts)
    assert [len(p.short_message) for p in parts] == [153, 47]  # not aiosmpplib's 254


def test_payload_mode_sends_the_whole_text_in_one_tlv() -> None:
    text = "ж" * 300 + EMOJI
    [part] = split(text, "payload", 1)
    assert (part.short_message, part.esm_class, part.data_coding) == (b"", 0, 8)
    assert part.tlvs == {MESSAGE_PAYLOAD: text.encode("utf-16-be")}


def test_gsm_text_is_sent_unpacked_with_escapes() -> None:
    [part] = split("a€[", "udh8", 1)
    assert part.short_message == b"\x61\x1b\x65\x1b\x3c"


GSM_CHARS = sorted(set(GSM_BASIC_ENCODE_MAP) | set(GSM_EXTENDED_ENCODE_MAP))


@pytest.mark.parametrize("char", GSM_CHARS)
def test_every_gsm_character_is_encoded_as_the_codec_does(char: str) -> None:
    [part] = split(char, "udh8", 1)
    assert part.short_message == bytes(GSM7BitCodec().encode(char)[0])


@pytest.mark.parametrize("mode", MODES)
def test_gsm_parts_carry_the_codec_bytes_on_random_texts(mode: SplitMode) -> None:
    # The fast encoder must give the codec's bytes exactly: the bodies of the parts, joined,
    # are the codec's encoding of the whole text (escapes are never cut, so bodies join).
    rng = random.Random(2024)
    codec = GSM7BitCodec()
    basic = sorted(GSM_BASIC_ENCODE_MAP)
    for _ in range(500):
        pool = basic if rng.random() < 0.5 else GSM_CHARS
        text = "".join(rng.choice(pool) for _ in range(rng.randrange(0, 700)))
        parts = split(text, mode, rng.randrange(0x10000))
        assert all(p.data_coding == 0 for p in parts)
        joined = b"".join(body_and_concat(p)[0] for p in parts)
        assert joined == bytes(codec.encode(text)[0])


def test_more_than_255_parts_are_refused() -> None:
    assert len(split("x" * 153 * 255, "udh8", 1)) == 255
    with pytest.raises(ValueError, match="256 segments"):
        split("x" * (153 * 255 + 1), "udh8", 1)


# --- parse_udh -------------------------------------------------------------------------------


def test_parse_udh_reads_an_8_bit_reference() -> None:
    assert parse_udh(bytes((5, 0, 3, 0xAB, 2, 1)) + b"hi") == (Concat(0xAB, 2, 1, 8), b"hi")


def test_parse_udh_reads_a_16_bit_reference_as_16_bits() -> None:
    # aiosmpplib reads four octets here and gets the reference wrong.
    sm = bytes((6, 8, 4, 0xBE, 0xEF, 3, 2)) + b"body"
    assert parse_udh(sm) == (Concat(0xBEEF, 3, 2, 16), b"body")


def test_parse_udh_finds_concatenation_after_other_elements() -> None:
    port_ie = bytes((0x05, 4, 0x0B, 0x84, 0x23, 0xF0))  # application port addressing
    sm = bytes((11,)) + port_ie + bytes((0, 3, 9, 4, 4)) + b"tail"
    assert parse_udh(sm) == (Concat(9, 4, 4, 8), b"tail")


def test_parse_udh_without_concatenation_returns_the_body() -> None:
    assert parse_udh(bytes((4, 0x05, 2, 1, 2)) + b"x") == (None, b"x")


@pytest.mark.parametrize(
    "sm",
    [b"", b"\x09\x00\x03", bytes((5, 0, 9, 1, 2, 3)), bytes((5, 0, 3, 1, 2, 3))[:-1]],
)
def test_parse_udh_of_a_malformed_header_gives_no_concat(sm: bytes) -> None:
    concat, body = parse_udh(sm)
    assert concat is None
    assert body == sm


@pytest.mark.parametrize("seq_total", [(0, 2), (3, 2), (1, 0)])
def test_parse_udh_rejects_impossible_sequence_numbers(seq_total: tuple[int, int]) -> None:
    seq, total = seq_total
    assert parse_udh(bytes((5, 0, 3, 1, total, seq)) + b"x") == (None, b"x")


def test_parse_udh_reads_what_split_writes() -> None:
    cases: tuple[tuple[SplitMode, int], ...] = (("udh8", 8), ("udh16", 16))
    for mode, bits in cases:
        parts = split("y" * 320, mode, 0xABCD)
        ref = 0xCD if bits == 8 else 0xABCD
        assert [parse_udh(p.short_message)[0] for p in parts] == [
            Concat(ref, 3, seq, bits) for seq in (1, 2, 3)
        ]


def test_parse_udh_never_raises_on_random_bytes() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        sm = rng.randbytes(rng.randrange(0, 40))
        concat, body = parse_udh(sm)
        assert body == sm or sm.endswith(body)
        assert concat is None or 1 <= concat.seq <= concat.total


# --- decode_text -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "coding", "text"),
    [
        (b"\x00\x1b\x65", 0x00, "@€"),
        (b"\x04\x36", 0x08, "ж"),
        (b"caf\xe9", 0x03, "café"),
        (b"plain", 0x01, "plain"),
        (b"\x00\x41", 0x18, "A"),  # general group, UCS-2 alphabet with a message class
        (b"\x1b\x3c", 0xF0, "["),  # group F, default alphabet
        (b"\xe9", 0xF4, "é"),  # group F, 8-bit data
    ],
)
def test_decode_text_follows_the_data_coding(data: bytes, coding: int, text: str) -> None:
    assert decode_text(data, coding) == text


def test_decode_text_never_raises_on_random_bytes() -> None:
    rng = random.Random(11)
    for _ in range(2000):
        data = rng.randbytes(rng.randrange(0, 50))
        assert isinstance(decode_text(data, rng.randrange(0, 256)), str)


@pytest.mark.parametrize("mode", MODES)
def test_split_gives_several_parts_exactly_when_analyse_counts_several_segments(
    mode: SplitMode,
) -> None:
    # The dispatcher asks split, not analyse, whether a message needs a concatenation reference.
    rng = random.Random(31)
    alphabet = "abc €[" + EMOJI + "ж"
    for _ in range(1000):
        text = "".join(rng.choice(alphabet[: rng.choice((3, 6, 9))])
                       for _ in range(rng.randrange(0, 400)))
        several = len(split(text, mode, 0)) > 1
        assert several == (mode != "payload" and analyse(text).segments > 1), text


# --- the count is the parts on the wire ------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "text", "parts"),
    [
        ("udh8", "a" * 152 + "€" + "b" * 152, 3),  # 305 septets, but € cannot end part one
        ("udh8", "a" * 152 + ("€" + "a" * 150) * 9 + "€" + "a" * 6, 11),  # 1,528 septets
        ("udh16", "a" * 306, 3),  # a 7-octet UDH leaves 152 septets a part, not 153
        ("udh8", EMOJI * 335, 11),  # 670 units, but 67 is odd: 33 emoji a part
        ("sar", EMOJI * 335, 11),
        ("udh16", EMOJI * 335, 11),
    ],
)
def test_the_segment_count_is_the_number_of_parts_sent(
    mode: SplitMode, text: str, parts: int
) -> None:
    assert len(split(text, mode, 1)) == parts
    assert analyse(text, mode).segments == parts


def test_the_segment_count_of_every_mode_is_the_number_of_parts_on_random_texts() -> None:
    # Texts near the boundaries, where two-unit characters (escapes, surrogate pairs, even a
    # lone surrogate) fall at the cuts; payload mode sends one PDU that the SMSC cuts as udh8.
    rng = random.Random(4242)
    alphabets = ["ab", "a€", "a€[~", "aж", "ж" + EMOJI, "a" + EMOJI, "ж\ud83d" + EMOJI]
    for _ in range(3000):
        alphabet = rng.choice(alphabets)
        size = rng.choice((67, 70, 152, 153, 160))
        length = rng.randrange(size - 5, size * rng.randint(1, 12) + 5)
        text = "".join(rng.choice(alphabet) for _ in range(length))
        for mode in CONCAT_MODES:
            assert analyse(text, mode).segments == len(split(text, mode, 1)), (mode, text)
        assert len(split(text, "payload", 1)) == 1
        assert analyse(text, "payload").segments == len(split(text, "udh8", 1)), text


def test_a_text_beyond_255_segments_is_counted_beyond_255_without_being_cut() -> None:
    assert analyse("€" * 153 * 255).segments > 255
    assert analyse("x" * 4_000_000).segments == -(-4_000_000 // 153)
