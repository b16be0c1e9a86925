"""Redis URLs to clients: the one place a redis-py client or arq's Redis settings are built.

Two kinds of URL:

    redis://[[user]:password@]host[:port][/db]   (also rediss://, unix://) a single server
    redis+sentinel://[[user]:password@]h1[:p1][,h2[:p2]...]/service[/db][?sentinel_password=]
                                                   the primary that Sentinel names ``service``

With Sentinel, every new connection asks the sentinels where the primary is, and a connection
to a demoted primary (READONLY) is dropped, so after a failover clients reconnect to the new
primary by themselves. The password in the URL is the data nodes'; sentinels that need one of
their own take ``sentinel_password``. Sentinel ports default to 26379.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

SENTINEL_SCHEME = "redis+sentinel"
DIRECT_SCHEMES = ("redis", "rediss", "unix")
SENTINEL_PORT = 26379


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """Where a Sentinel-monitored primary is found, from a ``redis+sentinel://`` URL."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_password: str | None = field(default=None, repr=False)


def parse_sentinel_url(url: str) -> SentinelTarget:
    """The parts of a ``redis+sentinel://`` URL; ValueError saying what is wrong."""
    netloc, path_text, query_text = _split_sentinel_url(url)
    userinfo, _, hosts = netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    sentinels = tuple(_host_port(h) for h in hosts.split(","))
    path = [p for p in path_text.split("/") if p]
    if not path or len(path) > 2:
        raise ValueError("the path must name the service: redis+sentinel://h1,h2/mymaster[/db]")
    query = parse_qs(query_text)
    db_text = path[1] if len(path) == 2 else query.get("db", ["0"])[0]
    if not db_text.isdigit():
        raise ValueError(f"the database must be a number, got {db_text!r}")
    sentinel_password = query.get("sentinel_password", [""])[0]
    return SentinelTarget(
        sentinels=sentinels, service=unquote(path[0]), db=int(db_text),
        username=unquote(user) or None, password=unquote(password) or None,
        sentinel_password=sentinel_password or None,
    )


def check_redis_url(url: str) -> None:
    """Raise ValueError unless ``url`` is a Redis URL this module can connect to."""
    scheme = _scheme(url)
    if scheme == SENTINEL_SCHEME:
        parse_sentinel_url(url)
    elif scheme not in DIRECT_SCHEMES:
        raise ValueError("must be a redis://, rediss://, unix:// or redis+sentinel:// URL")


def redis_client(url: str, **options: Any) -> Redis:
    """A client of the server (or Sentinel-named primary) at ``url``; ``options`` go to every
    data connection (timeouts, health checks). Closing the client closes everything it opened.
    """
    if _scheme(url) != SENTINEL_SCHEME:
        direct: Redis = Redis.from_url(url, **options)
        return direct
    target = parse_sentinel_url(url)
    client: Redis = _sentinel(target, options).master_for(target.service,
                                                          redis_class=SentinelRedis)
    return client


def arq_redis_settings(url: str) -> RedisSettings:
    """arq's settings for ``url`` (``sentinel=True`` with the sentinels as hosts)."""
    if _scheme(url) != SENTINEL_SCHEME:
        return RedisSettings.from_dsn(url)
    target = parse_sentinel_url(url)
    return RedisSettings(host=list(target.sentinels), sentinel=True,
                         sentinel_master=target.service, database=target.db,
                         username=target.username, password=target.password)


def arq_redis_pool(url: str) -> ArqRedis | None:
    """For a Sentinel URL, the pool an arq Worker should be given (``redis_pool``), else None.

    arq builds its own Sentinel client from :func:`arq_redis_settings` but never closes the
    connections to the sentinels; this one closes them with the pool. No I/O happens here.
    """
    if _scheme(url) != SENTINEL_SCHEME:
        return None
    target = parse_sentinel_url(url)
    pool: ArqRedis = _sentinel(target, {"socket_connect_timeout": 5}).master_for(
        target.service, redis_class=SentinelArqRedis)
    return pool


def _sentinel(target: SentinelTarget, options: dict[str, Any]) -> Sentinel:
    # Sentinel connections get the same socket timeouts, and their own password if any.
    sentinel_kwargs = {k: v for k, v in options.items() if k.startswith("socket_")}
    if target.sentinel_password:
        sentinel_kwargs["password"] = target.sentinel_password
    return Sentinel(  # type: ignore[no-untyped-call]
        list(target.sentinels), sentinel_kwargs=sentinel_kwargs, db=target.db,
        username=target.username, password=target.password, **options)


async def _close_sentinels(pool: object) -> None:
    if isinstance(pool, SentinelConnectionPool):
        await asyncio.gather(*(s.aclose() for s in pool.sentinel_manager.sentinels))


class SentinelRedis(Redis):
    """A client of a Sentinel-named primary that also closes its sentinel connections."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        """Close the data connections, then the connections to the sentinels."""
        await super().aclose(close_connection_pool)
        await _close_sentinels(self.connection_pool)


class SentinelArqRedis(ArqRedis):
    """arq's client of a Sentinel-named primary that also closes its sentinel connections."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        """Close the data connections, then the connections to the sentinels."""
        await super().aclose(close_connection_pool)
        await _close_sentinels(self.connection_pool)


def _scheme(url: str) -> str:
    """The URL's scheme, without urlsplit (see ``_split_sentinel_url``)."""
    scheme, sep, _ = url.partition("://")
    return scheme.lower() if sep else ""


def _split_sentinel_url(url: str) -> tuple[str, str, str]:
    """(netloc, path, query) of a sentinel URL, split by hand: urlsplit checks the netloc as one
    host, and a list with an IPv6 member (``s1,[::1]:26381``) is "Invalid IPv6 URL" to the
    urllib of some patch releases (Debian 12's Python 3.11.2)."""
    prefix = f"{SENTINEL_SCHEME}://"
    if not url.lower().startswith(prefix):
        raise ValueError(f"not a {SENTINEL_SCHEME}:// URL")
    rest, _, _fragment = url[len(prefix):].partition("#")
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    return netloc, slash + path, query


def _host_port(text: str) -> tuple[str, int]:
    text = text.strip()
    if text.startswith("["):  # [IPv6]:port
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise ValueError(f"a sentinel address has no host: {text!r}")
    if port_text and not (port_text.isdigit() and 1 <= int(port_text) <= 65535):
        raise ValueError(f"bad sentinel port in {text!r}")
    return host, int(port_text) if port_text else SENTINEL_PORT
