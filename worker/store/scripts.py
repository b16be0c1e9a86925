"""The store's Lua scripts: ``lua/<name>.lua``, one per atomic operation, as BullMQ keeps them.

A script pulls in shared functions with a line ``--- @include "name"``, resolved when it is
loaded: from ``lua/includes/<name>.lua``, or one of the fragments generated here from the Python
that owns the values, so Lua never spells them itself:

    keys        ``P``, the key prefix (keys.PREFIX), ``M``, the prefix of messages' keys with
                their shard's hash tag (keys.MESSAGES), ``C``, configuration's (keys.CONFIG),
                ``WH_GROUP``, the webhooks' group, and
                ``WH_SHARDS``, the streams per account (keys.WEBHOOK_SHARDS)
    lifecycle   ``ALLOWED``, ``FINAL`` and ``rank`` from worker.lifecycle; ``HOOKED``, the
                statuses a callback hears of (bounds.WEBHOOK_STATES)
    bounds      the caps of bounds.py (STATS_TTL_SECONDS, FAILURES_KEPT, HELD_QUEUE_MAX,
                WH_MAXLEN, DEAD_LETTER_MAXLEN)

Each fragment is included once per script, where it is first named (its own includes first);
a cycle is an error. Scripts are resolved once per process and registered with each client.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from importlib.resources import files

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from worker.lifecycle import ALLOWED, FINAL, SEVERITY
from worker.store.bounds import (
    DEAD_LETTER_MAXLEN,
    FAILURES_KEPT,
    HELD_QUEUE_MAX,
    STATS_TTL_SECONDS,
    WEBHOOK_STATES,
    WEBHOOK_STREAM_MAXLEN,
)
from worker.store.keys import (
    CONFIG,
    MESSAGES,
    PREFIX,
    ROUTE_STAT,
    WEBHOOK_GROUP,
    WEBHOOK_SHARDS,
)

INCLUDE = re.compile(r'^--- @include "([\w./-]+)"[ \t]*$', re.MULTILINE)
_LUA = files("worker.store").joinpath("lua")


class ScriptError(ValueError):
    """A script or include that cannot be resolved (missing, or an include cycle)."""


def _lua_string(value: str) -> str:
    if not value.isascii() or not value.isprintable() or "'" in value or "\\" in value:
        raise ScriptError(f"not a plain Lua string: {value!r}")
    return f"'{value}'"


def _table(name: str, entries: list[str]) -> str:
    return f"local {name} = {{" + ",".join(entries) + "}\n"


@functools.cache
def generated() -> dict[str, str]:
    """The fragments built from Python, by include name."""
    allowed = [
        f"[{json.dumps(str(src))}]={{"
        + ",".join(f"[{json.dumps(str(d))}]=true" for d in sorted(dst)) + "}"
        for src, dst in ALLOWED.items()
    ]
    # Receipt states by how bad they are, from lifecycle.SEVERITY: the worst part names the
    # message.
    rank = ["delivered=0", *(f"{s}={len(SEVERITY) - i}" for i, s in enumerate(SEVERITY))]
    return {
        "keys": f"local P = {_lua_string(PREFIX)}\n"
                f"local M = {_lua_string(MESSAGES)}\n"
                f"local C = {_lua_string(CONFIG)}\n"
                f"local WH_GROUP = {_lua_string(WEBHOOK_GROUP)}\n"
                f"local ROUTE_STAT = {_lua_string(ROUTE_STAT)}\n"
                f"local WH_SHARDS = {int(WEBHOOK_SHARDS)}\n",
        "lifecycle": _table("ALLOWED", allowed)
        + _table("FINAL", [f"[{json.dumps(str(f))}]=true" for f in sorted(FINAL)])
        + _table("rank", rank)
        + _table("HOOKED", [f"[{json.dumps(str(s))}]=true" for s in sorted(WEBHOOK_STATES)]),
        "bounds": f"local STATS_TTL_SECONDS = {STATS_TTL_SECONDS}\n"
                  f"local FAILURES_KEPT = {FAILURES_KEPT}\n"
                  f"local HELD_QUEUE_MAX = {HELD_QUEUE_MAX}\n"
                  f"local WH_MAXLEN = {WEBHOOK_STREAM_MAXLEN}\n"
                  f"local DEAD_LETTER_MAXLEN = {DEAD_LETTER_MAXLEN}\n",
    }


def resolve(text: str, fragment: Callable[[str], str]) -> str:
    """``text`` with every ``--- @include "name"`` line replaced by ``fragment(name)``,
    itself resolved; a fragment already included leaves an empty line."""
    done: set[str] = set()

    def expand(text: str, stack: tuple[str, ...]) -> str:
        def include(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in stack:
                raise ScriptError("include cycle: " + " -> ".join((*stack, name)))
            if name in done:
                return ""
            done.add(name)
            return expand(fragment(name), (*stack, name)).rstrip("\n")

        return INCLUDE.sub(include, text)

    return expand(text, ())


def _read(*path: str) -> str:
    resource = _LUA.joinpath(*path)
    if not resource.is_file():
        raise ScriptError(f"no Lua file {'/'.join(path)}")
    return resource.read_text(encoding="utf-8")


def _fragment(name: str) -> str:
    made = generated()
    return made[name] if name in made else _read("includes", f"{name}.lua")


@functools.cache
def source(name: str) -> str:
    """The script ``lua/<name>.lua`` with its includes resolved, as Redis runs it."""
    return resolve(_read(f"{name}.lua"), _fragment)


def names() -> list[str]:
    """Every script (not the includes), by name."""
    return sorted(r.name[:-4] for r in _LUA.iterdir() if r.name.endswith(".lua"))


def register(redis: Redis, name: str) -> AsyncScript:
    """The script ``name`` registered with a client (no round trip: loaded on first use)."""
    return redis.register_script(source(name))
