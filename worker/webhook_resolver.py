"""The webhook deliverer's address check: it never connects to an address that is not public.

:class:`PublicResolver` wraps aiohttp's resolver and drops the addresses worker/netguard.py
refuses, so the check applies to the very addresses the connector dials, at every lookup: a
name that resolved elsewhere when it was set (or answers differently on each lookup, as in DNS
rebinding) gains nothing. aiohttp connects to IP literals without asking its resolver, so
:func:`check_literal` covers those before each POST.
"""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from worker.netguard import is_public_text, literal_refusal, not_public


class RefusedTarget(OSError):
    """No public address to connect to; the message says which were refused. An OSError, so
    aiohttp's connector reports it as a connection error (``ClientConnectorError.os_error``)."""


class PublicResolver(AbstractResolver):
    """Resolves through ``inner``, keeping only public addresses; none left: RefusedTarget."""

    def __init__(self, inner: AbstractResolver) -> None:
        self._inner = inner

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        """The public addresses of ``host``."""
        found = await self._inner.resolve(host, port, family)
        public = [r for r in found if is_public_text(r["host"])]
        if not public:
            raise RefusedTarget(not_public(host, [r["host"] for r in found]))
        return public

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._inner.close()


def check_literal(url: str) -> None:
    """RefusedTarget if ``url``'s host is an IP literal that is not public."""
    try:
        host = URL(url).raw_host or ""
    except ValueError:
        return  # no URL aiohttp can request either: the POST fails there, as InvalidURL
    refusal = literal_refusal(host)
    if refusal is not None:
        raise RefusedTarget(refusal)
