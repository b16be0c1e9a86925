"""``smsgw keys``: API key management from the command line."""

from __future__ import annotations

import argparse

from redis.asyncio import Redis

from gateway.auth import ROLES, hash_secret, key_fields, new_secret
from worker.config import Settings
from worker.store import Store


def parse_roles(text: str) -> frozenset[str]:
    """Validated roles from a comma list."""
    roles = frozenset(r.strip() for r in text.split(",") if r.strip())
    unknown = roles - set(ROLES)
    if unknown or not roles:
        raise SystemExit(f"smsgw keys: roles must be among {', '.join(ROLES)}")
    return roles


async def create_key(
    store: Store, *, name: str, account: str, roles: frozenset[str],
    channels: frozenset[str] | None, secret: str | None = None,
) -> str:
    """Create a key and return its secret (the only time it is visible)."""
    secret = secret or new_secret()
    await store.put_api_key(hash_secret(secret), key_fields(
        name=name, account=account, roles=roles, channels=channels))
    return secret


async def run_keys(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``keys`` subcommand."""
    redis = Redis.from_url(settings.redis_url)
    try:
        store = Store(redis, settings.retention_seconds)
        if args.keys_command == "create":
            channels = None if args.channels == "*" else frozenset(args.channels.split(","))
            secret = await create_key(store, name=args.name, account=args.account,
                                      roles=parse_roles(args.roles), channels=channels,
                                      secret=args.secret)
            print(secret)
            return 0
    finally:
        await redis.aclose()
    return 2
