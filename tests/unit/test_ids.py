"""ULIDs: the pair-table encoder writes what the digit-by-digit definition writes."""

from __future__ import annotations

import random
import time

from worker.ids import encode, encode_many, is_id, message_of, new_id, new_ids

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _by_definition(ms: int, randomness: bytes) -> str:
    value = ms << 80 | int.from_bytes(randomness, "big")
    return "".join(CROCKFORD[value >> (5 * (25 - i)) & 31] for i in range(26))


def test_encoding_matches_the_digit_by_digit_definition_on_generated_inputs() -> None:
    rng = random.Random("ulid")
    edges = [(0, bytes(10)), (2**48 - 1, b"\xff" * 10), (1, b"\x00" * 9 + b"\x01")]
    generated = [(rng.randrange(2**48), rng.randbytes(10)) for _ in range(20_000)]
    for ms, randomness in edges + generated:
        assert encode(ms, randomness) == _by_definition(ms, randomness)


def test_ids_encoded_together_are_those_encoded_one_at_a_time() -> None:
    rng = random.Random("many")
    for _ in range(500):
        ms, count = rng.randrange(2**48), rng.randint(0, 20)
        randomness = rng.randbytes(10 * count)
        expected = [encode(ms, randomness[i:i + 10]) for i in range(0, 10 * count, 10)]
        assert encode_many(ms, randomness) == expected


def test_new_ids_are_distinct_ids_of_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    ids = [*new_ids(500), new_id()]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    assert all(is_id(i) for i in ids)
    for i in ids:
        ms = int("".join(f"{CROCKFORD.index(c):05b}" for c in i[:10]), 2)
        assert before <= ms <= after


def test_no_ids_asked_for_gives_none() -> None:
    assert new_ids(0) == []


def test_a_part_id_names_its_message_and_nothing_else_does() -> None:
    api_id = new_id()
    assert message_of(api_id) == api_id
    assert message_of(f"{api_id}-3") == message_of(f"{api_id}-255") == api_id
    for other in (f"{api_id}-", f"{api_id}-x", f"{api_id}-1234", f"{api_id}-1-2", "x-1",
                  f"{api_id}-\u0663", ""):
        assert message_of(other) is None, other
