"""The deliverer's resolver keeps public addresses only; IP literals are checked before a POST."""

from __future__ import annotations

import re
import socket
from ipaddress import ip_address

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from worker.webhook_resolver import PublicResolver, RefusedTarget, check_literal


class Answers(AbstractResolver):
    """A resolver that answers every name with fixed addresses (the DNS a tenant controls)."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses
        self.closed = False

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host=a, port=port,
                              family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                              proto=0, flags=0) for a in self.addresses]

    async def close(self) -> None:
        self.closed = True


async def test_only_the_public_addresses_of_a_name_are_returned() -> None:
    resolver = PublicResolver(Answers("10.0.0.7", "93.184.216.34", "::1", "2606:4700::1111"))
    found = await resolver.resolve("hooks.example", 443)
    assert [(r["host"], r["port"]) for r in found] == [("93.184.216.34", 443),
                                                      ("2606:4700::1111", 443)]


@pytest.mark.parametrize(("answers", "reason"), [
    (("127.0.0.1",), "target address 127.0.0.1 is not public"),
    (("169.254.169.254", "fe80::1%eth0"),
     "target addresses 169.254.169.254, fe80::1%eth0 are not public"),
    ((), "target rebind.example has no address"),
])
async def test_a_name_without_a_public_address_is_refused_with_the_reason(
    answers: tuple[str, ...], reason: str,
) -> None:
    with pytest.raises(RefusedTarget) as refused:
        await PublicResolver(Answers(*answers)).resolve("rebind.example", 80)
    assert str(refused.value) == reason
    assert isinstance(refused.value, OSError)  # so aiohttp reports it as a connection error


async def test_closing_the_resolver_closes_the_one_it_wraps() -> None:
    inner = Answers()
    await PublicResolver(inner).close()
    assert inner.closed


@pytest.mark.parametrize(("url", "reason"), [
    ("http://127.0.0.1:8080/x", "target address 127.0.0.1 is not public"),
    ("http://[::1]/x", "target address ::1 is not public"),
    # the address as this Python spells it (3.13 writes IPv4-mapped addresses dotted)
    ("http://[::ffff:a9fe:a9fe]/latest",
     f"target address {ip_address('::ffff:a9fe:a9fe')} is not public"),
    ("http://127.1/x", "target address 127.0.0.1 is not public"),
    ("http://1.2.3.4.5/x", "target 1.2.3.4.5 is not a valid IP address"),
])
def test_a_url_at_a_literal_address_that_is_not_public_is_refused(url: str, reason: str) -> None:
    with pytest.raises(RefusedTarget, match=f"^{re.escape(reason)}$"):
        check_literal(url)


@pytest.mark.parametrize("url", ["http://8.8.8.8/x", "https://[2606:4700::1111]/x",
                                 "http://localhost:9/x", "https://hooks.example/x"])
def test_public_literals_and_names_pass_the_literal_check(url: str) -> None:
    check_literal(url)  # names are checked by the resolver, at connection time
