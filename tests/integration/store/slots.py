"""Which keys a script run touched, heard with MONITOR, and the cluster slots they hash to.

Redis Cluster runs a script only if every key it touches (its KEYS and the keys it builds in
Lua) hashes to one slot. MONITOR shows each EVALSHA and then, marked ``lua``, every command the
script called; the server itself names the keys of each command (COMMAND GETKEYS).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.crc import key_slot
from redis.exceptions import ResponseError

from worker.store import scripts

_ARG = re.compile(rb'"((?:[^"\\]|\\.)*)"')
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"a": b"\a", b"b": b"\b"}
MARKER = b"-- end of the monitored block --"


def _unescape(arg: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(arg):
        if arg[i:i + 1] == b"\\":
            nxt = arg[i + 1:i + 2]
            if nxt == b"x":
                out.append(int(arg[i + 2:i + 4], 16))
                i += 4
                continue
            out += _ESCAPES.get(nxt, nxt)
            i += 2
            continue
        out.append(arg[i])
        i += 1
    return bytes(out)


def parse(line: bytes) -> tuple[bool, list[bytes]]:
    """A MONITOR line: whether a script ran the command, and its arguments."""
    head, _, rest = line.partition(b"] ")
    return head.endswith(b" lua"), [_unescape(a) for a in _ARG.findall(rest)]


@dataclass
class Run:
    """One script run: its name and every key it declared or touched."""

    script: str
    keys: list[bytes] = field(default_factory=list)

    def slots(self) -> dict[int, list[bytes]]:
        """The keys by the slot they hash to."""
        by: dict[int, list[bytes]] = {}
        for k in self.keys:
            by.setdefault(key_slot(k), []).append(k)
        return by


def _script_names() -> dict[bytes, str]:
    return {hashlib.sha1(scripts.source(n).encode()).hexdigest().encode(): n
            for n in scripts.names()}


async def _keys_of(redis: Redis, args: list[bytes]) -> list[bytes]:
    try:
        return [k if isinstance(k, bytes) else k.encode()
                for k in await redis.command_getkeys(*args)]
    except ResponseError:  # a command without keys: TIME, PUBLISH, ...
        return []


@asynccontextmanager
async def script_runs(redis: Redis) -> AsyncIterator[list[Run]]:
    """Every script run inside the block, with the keys it touched (filled as the block ends)."""
    runs: list[Run] = []
    lines: list[bytes] = []
    async with redis.monitor() as monitor:
        yield runs
        await redis.echo(MARKER)
        while True:
            line = await monitor.connection.read_response()
            if isinstance(line, bytes) and b'"echo"' in line.lower() and MARKER in line:
                break
            if isinstance(line, bytes) and line != b"OK":
                lines.append(line)
    names = _script_names()
    cache: dict[tuple[bytes, ...], list[bytes]] = {}
    for line in lines:
        by_lua, args = parse(line)
        if not args:
            continue
        if not by_lua and args[0].lower() in (b"evalsha", b"eval"):
            body = args[1]
            name = names.get(body, "") if args[0].lower() == b"evalsha" else names.get(
                hashlib.sha1(body).hexdigest().encode(), "")
            runs.append(Run(name or "?", list(args[3:3 + int(args[2])])))
        elif by_lua and runs:
            key = tuple(args)
            if key not in cache:
                cache[key] = await _keys_of(redis, args)
            runs[-1].keys.extend(cache[key])
