"""aiosmpplib defect 13: a 16-bit concatenation reference read as 32 bits, so that the parts of a
mobile-originated message carry different references and never reassemble."""

from __future__ import annotations

from collections import defaultdict

from worker.encoding import Concat, decode_text, parse_udh


def _udh16(ref: int, total: int, seq: int) -> bytes:
    return bytes((6, 0x08, 4)) + ref.to_bytes(2, "big") + bytes((total, seq))


def _reassemble(segments: list[bytes]) -> dict[tuple[int, int], str]:
    """(ref, ref_bits) -> text, grouping segments the way an MO recorder must."""
    groups: dict[tuple[int, int], dict[int, bytes]] = defaultdict(dict)
    for sm in segments:
        concat, body = parse_udh(sm)
        assert concat is not None
        groups[concat.ref, concat.ref_bits][concat.seq] = body
    return {key: "".join(decode_text(parts[s], 0) for s in sorted(parts))
            for key, parts in groups.items()}


def test_the_parts_of_a_16_bit_referenced_mo_share_one_reference_and_reassemble() -> None:
    # Parts arrive out of order; a 32-bit read would take total and seq into the reference.
    segments = [_udh16(0x1234, 2, 2) + b" world", _udh16(0x1234, 2, 1) + b"hello"]
    assert [parse_udh(sm)[0] for sm in segments] == [Concat(0x1234, 2, 2, 16),
                                                     Concat(0x1234, 2, 1, 16)]
    assert _reassemble(segments) == {(0x1234, 16): "hello world"}


def test_interleaved_mos_with_8_and_16_bit_references_stay_apart() -> None:
    # 0x0034 as a 16-bit reference and 0x34 as an 8-bit one name different messages.
    segments = [
        _udh16(0x0034, 2, 1) + b"sixteen ", bytes((5, 0x00, 3, 0x34, 2, 1)) + b"eight ",
        _udh16(0x0134, 2, 1) + b"other ", bytes((5, 0x00, 3, 0x34, 2, 2)) + b"bit",
        _udh16(0x0034, 2, 2) + b"bit", _udh16(0x0134, 2, 2) + b"one",
    ]
    assert _reassemble(segments) == {
        (0x0034, 16): "sixteen bit", (0x34, 8): "eight bit", (0x0134, 16): "other one"}
