"""``smsgw keys``: API key management from the command line (an operator is an Admin).

``create`` and ``rotate`` print the new key alone on stdout, once; everything else goes to
stderr, so ``KEY=$(smsgw keys create ...)`` works. Exit status: 0 done, 1 unknown key id,
2 invalid arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable

from gateway.auth import (
    ROLES,
    InvalidKey,
    KeySpec,
    all_keys,
    checked_senders,
    find_key,
    issue_key,
    parse_expiry,
    rotate_key,
)
from worker.config import Settings
from worker.redisconn import redis_client
from worker.senders import Senders, stored
from worker.store import KeyOp, Store, now_ms

SENDERS_HELP = ("senders its messages may choose: exact ones (Acme, +447012345678), digit "
                "prefixes ending in * (4470*), or * for any; comma list")


def parse_roles(text: str) -> frozenset[str]:
    """Validated roles from a comma list."""
    roles = frozenset(r.strip() for r in text.split(",") if r.strip())
    if not roles or not roles <= set(ROLES):
        raise InvalidKey("roles", f"roles must be among {', '.join(ROLES)}")
    return roles


def parse_channels(text: str) -> frozenset[str] | None:
    """None for '*' (every channel), else the listed channels."""
    return None if text.strip() == "*" else frozenset(
        c.strip() for c in text.split(",") if c.strip())


def parse_senders(items: str | list[str]) -> Senders:
    """Allowed senders from a comma list (or several), checked; InvalidKey if one is bad."""
    parts = [items] if isinstance(items, str) else items
    return checked_senders([s.strip() for p in parts for s in p.split(",") if s.strip()])


async def create_key(
    store: Store, *, name: str, account: str, roles: frozenset[str],
    channels: frozenset[str] | None, secret: str | None = None, rate: int = 0, burst: int = 0,
    daily_quota: int = 0, expires_at_ms: int = 0, parent_account: str = "",
    senders: Senders | None = None,
) -> str:
    """Create a key and return its secret (the only time it is visible)."""
    spec = KeySpec(name=name, account=account, roles=roles, channels=channels, rate=rate,
                   burst=burst, daily_quota=daily_quota, expires_at_ms=expires_at_ms,
                   parent_account=parent_account, senders=senders or Senders())
    secret, _ = await issue_key(store, spec, secret=secret)
    return secret


async def run_keys(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``keys`` subcommand."""
    redis = redis_client(settings.redis_url)
    try:
        store = Store(redis, settings.retention_seconds)
        return await _COMMANDS[args.keys_command](store, args)
    except InvalidKey as exc:
        print(f"smsgw keys: {exc.message}", file=sys.stderr)
        return 2
    finally:
        await redis.aclose()


async def _create(store: Store, args: argparse.Namespace) -> int:
    spec = KeySpec(
        name=args.name, account=args.account, roles=parse_roles(args.roles),
        channels=parse_channels(args.channels), rate=args.rate, burst=args.burst,
        daily_quota=args.quota, expires_at_ms=parse_expiry(args.expires, now_ms()),
        parent_account=args.parent_account, senders=parse_senders(args.senders),
    )
    secret, info = await issue_key(store, spec, secret=args.secret)
    print(secret)
    print(f"created key {info.key_id} ({info.name}, account {info.account}); the key above is "
          "shown only now", file=sys.stderr)
    return 0


async def _list(store: Store, args: argparse.Namespace) -> int:
    keys = [k for k in await all_keys(store) if not args.account or k.account == args.account]
    if args.json:
        print(json.dumps([k.as_dict() for k in keys], indent=1))
        return 0
    print("id               account          parent           ownership  roles          "
          "enabled  rate/burst  quota   name")
    for k in keys:
        print(f"{k.key_id:16} {k.account:16} {k.parent_account or '-':16} "
              f"{k.ownership or '-':10} "
              f"{','.join(sorted(k.roles)):14} {'yes' if k.enabled else 'no':8} "
              f"{k.rate}/{k.burst:<8} {k.daily_quota:<7} {k.name}")
    return 0


async def _show(store: Store, args: argparse.Namespace) -> int:
    info = await find_key(store, args.id)
    if info is None:
        return _unknown(args.id)
    shown = info.as_dict()
    print(json.dumps(shown, indent=1) if args.json else
          "\n".join(f"{k}: {'' if v is None else v}" for k, v in shown.items()))
    return 0


def _change(op: KeyOp) -> Callable[[Store, argparse.Namespace], Awaitable[int]]:
    async def run(store: Store, args: argparse.Namespace) -> int:
        if not await store.change_api_key(args.id, op):
            return _unknown(args.id)
        print(f"key {args.id}: {op}d", file=sys.stderr)
        return 0

    return run


async def set_senders(change: Callable[[str], Awaitable[bool]], who: str,
                      items: list[str]) -> bool:
    """Replace the senders of a key or SMPP user (``who``, for the message) by calling
    ``change`` with their stored form; False if it is unknown (InvalidKey if one is bad)."""
    senders = parse_senders(items)
    if not await change(stored(senders)):
        return False
    print(f"{who}: senders {', '.join(senders.entries) or 'none'}", file=sys.stderr)
    return True


async def _set_senders(store: Store, args: argparse.Namespace) -> int:
    def change(value: str) -> Awaitable[bool]:
        return store.change_api_key(args.id, "senders", value)

    return 0 if await set_senders(change, f"key {args.id}", args.senders) else \
        _unknown(args.id)


async def _rotate(store: Store, args: argparse.Namespace) -> int:
    secret = await rotate_key(store, args.id)
    if secret is None:
        return _unknown(args.id)
    print(secret)
    print(f"key {args.id} rotated: the old key no longer works; the new one is shown only now",
          file=sys.stderr)
    return 0


def _unknown(key_id: str) -> int:
    print(f"smsgw keys: no key with id {key_id!r}", file=sys.stderr)
    return 1


_COMMANDS: dict[str, Callable[[Store, argparse.Namespace], Awaitable[int]]] = {
    "create": _create, "list": _list, "show": _show, "rotate": _rotate,
    "set-senders": _set_senders,
    "enable": _change("enable"), "disable": _change("disable"), "delete": _change("delete"),
}
