"""SMPP 3.4 time formats (7.1.1): absolute and relative times read, malformed ones refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from worker.smpp.times import BadTime, absolute, parse_time, relative


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


NOW = ms(2026, 1, 31, 10, 0, 0)


@pytest.mark.parametrize(("text", "expected"), [
    ("260215103000000+", ms(2026, 2, 15, 10, 30)),  # UTC
    ("260215103000008+", ms(2026, 2, 15, 8, 30)),  # local is 2 h ahead of UTC
    ("260215103000004-", ms(2026, 2, 15, 11, 30)),  # local is 1 h behind UTC
    ("260215103000548+", ms(2026, 2, 15, 10, 30) + 500 - 12 * 3600_000),  # .5 s, +12 h
    ("991231235959000+", ms(2099, 12, 31, 23, 59, 59)),
    ("000001000000000R", NOW + 86400_000),  # one day
    ("000000013000000R", NOW + 90 * 60_000),
    ("000100000000000R", ms(2026, 2, 28, 10, 0, 0)),  # a month on: Jan 31 -> Feb's last day
    ("010000000000000R", ms(2027, 1, 31, 10, 0, 0)),
    ("000000000000000R", NOW),
])
def test_an_smpp_time_is_read_as_epoch_ms(text: str, expected: int) -> None:
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize("text", [
    "26021510300000+",  # 15 characters
    "2602151030000000+",  # 17
    "2602151030000a0+",  # a letter among the digits
    "26021510300 000+",
    "\uff12\uff160215103000000+",  # non-ASCII digits
    "261315103000000+",  # month 13
    "260015103000000+",  # month 0
    "260230103000000+",  # February 30
    "260215243000000+",  # hour 24
    "260215106000000+",  # minute 60
    "260215103060000+",  # second 60
    "260215103000049+",  # 49 quarter hours
    "260215103000000Z",  # neither +, - nor R
    "000001000000100R",  # relative with tenths
    "000001000000010R",  # relative with quarter hours
])
def test_a_malformed_smpp_time_is_refused(text: str) -> None:
    with pytest.raises(BadTime):
        parse_time(text, NOW)


def test_an_absolute_time_written_for_submit_sm_reads_back_the_same() -> None:
    at = ms(2026, 3, 4, 5, 6, 7) + 800
    assert absolute(at) == "260304050607800+"
    assert parse_time(absolute(at), NOW) == at


def test_a_relative_validity_is_written_in_days_hours_minutes_seconds() -> None:
    assert relative(0) == ""
    assert relative(2 * 86400 + 3 * 3600 + 4 * 60 + 5) == "000002030405000R"
    assert parse_time(relative(3600), NOW) == NOW + 3600_000
