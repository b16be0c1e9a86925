"""Senders: which ones a message may have, list entries, and the TON/NPI they go out with."""

from __future__ import annotations

import pytest

from worker.senders import Address, BadSender, Senders, address, check_entries, sender_problem


@pytest.mark.parametrize("sender", ["Acme", "A", "Acme Bank", "ACME-2_x.!", "12345678901",
                                    "+447012345678", "447012345678", "123456789012345", "12"])
def test_a_sender_is_alphanumeric_or_a_number(sender: str) -> None:
    assert sender_problem(sender) == ""


@pytest.mark.parametrize(("sender", "problem"), [
    ("", "is not a sender"),
    ("AcmeBankLtd1", "is not a sender"),  # 12 characters
    ("Acme,Inc", "is not a sender"),  # ',' separates stored lists
    ("Acme{}", "is not a sender"),  # GSM extension table: two septets each
    ("Acmé", "is not a sender"),
    ("Acme\n", "is not a sender"),
    (" Acme", "must not start or end with a space"),
    ("1234567890123456", "has 16 digits"),
    ("+1234567890123456", "has 16 digits"),
])
def test_a_sender_that_cannot_be_one_is_refused_with_why(sender: str, problem: str) -> None:
    assert problem in sender_problem(sender)


@pytest.mark.parametrize(("entries", "sender", "allowed"), [
    (["*"], "Anything", True),
    (["Acme"], "Acme", True),
    (["Acme"], "acme", False),
    (["Acme"], "Other", False),
    (["4470*"], "+447012345678", True),
    (["+4470*"], "447012345678", True),
    (["4470*"], "447112345678", False),
    (["4470*"], "4470Acme", False),  # a prefix is for numbers only
    (["+447012345678"], "447012345678", True),  # the same number with or without '+'
    ([], "Acme", False),  # no list: no sender may be chosen
])
def test_a_list_of_senders_matches_exact_senders_and_digit_prefixes(
    entries: list[str], sender: str, allowed: bool
) -> None:
    assert Senders.of(check_entries(entries)).matches(sender) is allowed


@pytest.mark.parametrize("entry", ["44*70", "Acme*", "*44", "", "1234567890123456"])
def test_a_bad_list_entry_is_refused(entry: str) -> None:
    with pytest.raises(BadSender):
        check_entries([entry])


@pytest.mark.parametrize(("wide", "narrow", "covers"), [
    (["*"], ["Acme", "44*"], True),
    (["44*"], ["4470*", "+447712345678"], True),
    (["4470*"], ["44*"], False),
    (["Acme"], ["*"], False),
    (["Acme", "Other"], ["Acme"], True),
    (["Acme"], ["Acme", "Other"], False),
    (["Acme"], ["44*"], False),
])
def test_a_list_covers_another_only_if_it_allows_all_it_does(
    wide: list[str], narrow: list[str], covers: bool
) -> None:
    assert Senders.of(wide).covers(Senders.of(narrow)) is covers


@pytest.mark.parametrize(("sender", "channel_addr", "want"), [
    ("Acme", "smsgw", Address("Acme", 7, 9)),  # the channel's own kind: its configured TON/NPI
    ("Acme", "447000000000", Address("Acme", 5, 0)),
    ("+447012345678", "smsgw", Address("447012345678", 1, 1)),
    ("447012345678", "smsgw", Address("447012345678", 1, 1)),  # over 8 digits: international
    ("12345", "smsgw", Address("12345", 3, 0)),  # a short code: network specific
    ("12345", "5555", Address("12345", 7, 9)),
    ("+447012345678", "+27820000000", Address("447012345678", 7, 9)),
])
def test_a_sender_goes_out_with_the_ton_and_npi_of_its_kind(
    sender: str, channel_addr: str, want: Address
) -> None:
    assert address(sender, channel_addr, 7, 9) == want
