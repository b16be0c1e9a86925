"""Per-message validation: segments are counted as the channel will send them."""

from __future__ import annotations

import pytest

from gateway.validate import Invalid, Rules, Validator

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
