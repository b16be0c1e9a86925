"""Which addresses a webhook may reach: globally routable unicast ones only. Pure.

Tenants choose their webhook URLs, so without this a URL could have the deliverer POST into
the gateway's own network (Redis on 127.0.0.1, cloud metadata at 169.254.169.254, 10/8,
fc00::/7...): a blind SSRF. URLs whose host is an IP literal are checked when they are set;
at delivery every address is checked as it is about to be connected to, after the lookup, so
a name that later resolves elsewhere (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 forms that carry an IPv4 address the packet ends up at: NAT64's well-known prefix
# (IPv4-mapped and 6to4 have their own properties on IPv6Address).
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Special-purpose ranges is_global lets through in some Python versions: IETF protocol
# assignments (192.0.0.0/24; its two anycast addresses are no webhook receivers either) and the
# deprecated 6to4 relay anycast.
_SPECIAL_IPV4 = (ipaddress.IPv4Network("192.0.0.0/24"), ipaddress.IPv4Network("192.88.99.0/24"))
# What inet_aton may read as an IPv4 address: '127.1', '2130706433', '0x7f.1', '0177.0.0.1'.
_LEGACY_IPV4 = re.compile(r"[0-9a-fA-FxX.]+")


def is_public(ip: Address) -> bool:
    """Whether ``ip`` is a globally routable unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (
            ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF) if ip in _NAT64 else None)
        if embedded is not None:
            return is_public(embedded)
        if ip.is_site_local:  # fec0::/10: deprecated, yet is_global says True
            return False
    elif any(ip in net for net in _SPECIAL_IPV4):
        return False
    # is_global alone lets multicast (224/4, ff00::/8) and some reserved ranges through, and
    # its exact ranges have moved between Python versions: ask every property that matters.
    return ip.is_global and not (ip.is_private or ip.is_multicast or ip.is_reserved
                                 or ip.is_loopback or ip.is_link_local or ip.is_unspecified)


def is_public_text(text: str) -> bool:
    """Whether ``text`` spells a public address (a scope suffix such as %eth0 allowed)."""
    try:
        return is_public(ipaddress.ip_address(text))
    except ValueError:
        return False


def literal_address(host: str) -> Address | None:
    """The address ``host`` spells, or None if it is a name to be resolved.

    Legacy IPv4 forms that resolvers still read as addresses count as the address they spell.
    A host that looks like an address yet spells none raises ValueError: HTTP clients skip the
    lookup for such hosts and hand them to the OS as they are.
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            pass
    if ":" in host or host.replace(".", "").isdigit():  # aiohttp's "is an IP" heuristic
        raise ValueError(f"{host} is not a valid IP address")
    return None


def literal_refusal(host: str) -> str | None:
    """Why a webhook to ``host`` is refused without any lookup (an IP literal that is not
    public); None for a public literal and for a name."""
    try:
        ip = literal_address(host)
    except ValueError as exc:
        return f"target {exc}"
    return None if ip is None or is_public(ip) else not_public(host, [str(ip)])


def not_public(host: str, addresses: Sequence[str]) -> str:
    """The reason given for a target whose ``addresses`` are all refused."""
    unique = list(dict.fromkeys(addresses))
    if not unique:
        return f"target {host} has no address"
    if len(unique) == 1:
        return f"target address {unique[0]} is not public"
    return f"target addresses {', '.join(unique)} are not public"
