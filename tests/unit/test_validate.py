"""Per-message validation: segments are counted as the channel will send them."""

from __future__ import annotations

import pytest

from gateway.validate import BadSchedule, BadValidity, Invalid, Rules, Timing, Validator

RULES = Rules(default_channel="u8", default_country_code="27", max_segments=2,
              channels={"u8": "udh8", "u16": "udh16", "pl": "payload"})
TO = "+27820000001"


def test_segments_are_counted_in_the_split_mode_of_the_message_channel() -> None:
    check = Validator(RULES, None).check
    assert check("u8", TO, "a" * 306, None).segments == 2
    with pytest.raises(Invalid, match="needs 3 SMS segments"):
        check("u16", TO, "a" * 306, None)  # a 7-octet UDH leaves 152 septets a part


def test_an_escape_that_cannot_end_a_part_counts_towards_the_limit() -> None:
    with pytest.raises(Invalid, match="needs 3 SMS segments"):
        Validator(RULES, None).check("u8", TO, "a" * 152 + "€" + "b" * 152, None)


def test_a_payload_channel_counts_the_sms_the_smsc_makes_of_its_one_pdu() -> None:
    check = Validator(RULES, None).check
    assert check("pl", TO, "a" * 306, None).segments == 2
    with pytest.raises(Invalid, match="needs 3 SMS segments"):
        check("pl", TO, "a" * 307, None)


NOW = 1_767_225_600_000
HOUR = 3_600_000


@pytest.mark.parametrize(("scheduled", "valid", "expected"), [
    (None, None, Timing()),
    (NOW - HOUR, None, Timing()),  # in the past: now
    (NOW + HOUR, None, Timing(NOW + HOUR)),
    (NOW + 30 * 24 * HOUR, None, Timing(NOW + 30 * 24 * HOUR)),  # the bound itself
    (None, NOW + HOUR, Timing(0, NOW + HOUR)),
    (NOW + HOUR, NOW + HOUR + 1, Timing(NOW + HOUR, NOW + HOUR + 1)),
    (NOW + HOUR, NOW + HOUR + 7 * 24 * HOUR, Timing(NOW + HOUR, NOW + HOUR + 7 * 24 * HOUR)),
])
def test_a_schedule_and_a_validity_within_bounds_are_taken(
    scheduled: int | None, valid: int | None, expected: Timing,
) -> None:
    assert RULES.timing(scheduled, valid, NOW) == expected


@pytest.mark.parametrize(("scheduled", "valid", "refusal", "reason"), [
    (NOW + 30 * 24 * HOUR + 1, None, BadSchedule, "at most 30 days ahead"),
    (None, NOW, BadValidity, "ends before"),  # ended already
    (NOW + 2 * HOUR, NOW + HOUR, BadValidity, "ends before"),
    (NOW + HOUR, NOW + HOUR + 7 * 24 * HOUR + 1, BadValidity, "at most 7 days"),
])
def test_a_schedule_or_validity_out_of_bounds_is_refused(
    scheduled: int | None, valid: int | None, refusal: type[Invalid], reason: str,
) -> None:
    with pytest.raises(refusal, match=reason):
        RULES.timing(scheduled, valid, NOW)
