"""Which addresses webhooks may reach: globally routable unicast only."""

from __future__ import annotations

import ipaddress

import pytest

from worker.netguard import is_public, is_public_text, literal_address, literal_refusal, not_public


@pytest.mark.parametrize("text", [
    "8.8.8.8", "1.1.1.1", "93.184.216.34", "2001:4860:4860::8888", "2606:4700::1111",
    "::ffff:8.8.8.8",  # IPv4-mapped: judged by the IPv4 address it carries
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8 (an IPv6-only host with DNS64 sees these)
    "2002:808:808::1",  # 6to4 of 8.8.8.8
])
def test_globally_routable_unicast_addresses_are_public(text: str) -> None:
    assert is_public(ipaddress.ip_address(text))


@pytest.mark.parametrize("text", [
    "127.0.0.1", "127.255.255.254", "0.0.0.0", "0.1.2.3", "10.0.0.1", "172.16.0.1",
    "172.31.255.255", "192.168.1.1", "169.254.169.254", "100.64.0.1", "100.127.255.254",
    "192.0.0.8", "192.0.0.9", "192.88.99.1", "192.0.2.1", "198.18.0.1", "198.51.100.7",
    "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "::1", "::", "fc00::1", "fd12:3456::1", "fe80::1", "fe80::1%eth0", "fec0::1", "ff02::1",
    "ff0e::1", "2001:db8::1", "100::1", "::7f00:1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
    "64:ff9b::a00:1", "64:ff9b::7f00:1", "2002:7f00:1::1", "2002:a00:1::1",
])
def test_loopback_private_link_local_shared_reserved_and_multicast_are_not(text: str) -> None:
    assert not is_public(ipaddress.ip_address(text))
    assert not is_public_text(text)


def test_text_that_is_no_address_is_not_public() -> None:
    assert not is_public_text("localhost") and not is_public_text("")
    assert is_public_text("8.8.8.8")


@pytest.mark.parametrize(("host", "address"), [
    ("127.0.0.1", "127.0.0.1"), ("::1", "::1"), ("::ffff:7f00:1", "::ffff:7f00:1"),
    ("127.1", "127.0.0.1"), ("2130706433", "127.0.0.1"), ("0x7f.1", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"), ("0", "0.0.0.0"), ("8.8.8.8", "8.8.8.8"),
])
def test_ip_literals_in_every_form_resolvers_accept_are_read_as_addresses(
    host: str, address: str,
) -> None:
    assert literal_address(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["localhost", "hooks.example.com", "deadbeef", "a1.example"])
def test_names_are_left_to_the_lookup(host: str) -> None:
    assert literal_address(host) is None and literal_refusal(host) is None


@pytest.mark.parametrize("host", ["1.2.3.4.5", "127.0.0.1.", "999.1.1.1", "::1::", "08.0.0.1"])
def test_a_host_that_looks_numeric_but_spells_no_address_is_refused(host: str) -> None:
    with pytest.raises(ValueError):
        literal_address(host)
    assert literal_refusal(host) == f"target {host} is not a valid IP address"


def test_the_refusal_names_the_address_actually_meant() -> None:
    assert literal_refusal("127.1") == "target address 127.0.0.1 is not public"
    assert literal_refusal("169.254.169.254") == "target address 169.254.169.254 is not public"
    assert literal_refusal("8.8.8.8") is None


def test_the_reason_names_every_refused_address_once() -> None:
    assert not_public("h", ["127.0.0.1"]) == "target address 127.0.0.1 is not public"
    assert not_public("h", ["::1", "127.0.0.1", "::1"]) == (
        "target addresses ::1, 127.0.0.1 are not public")
    assert not_public("h", []) == "target h has no address"
