"""``smsgw smpp-users``: SMPP system_id/password pairs of accounts (an operator is an Admin).

``create`` and ``rotate`` print the new password alone on stdout, once; everything else goes to
stderr, so ``PW=$(smsgw smpp-users create ...)`` works. Exit status: 0 done, 1 unknown user,
2 invalid arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable

from gateway.auth import InvalidKey, parse_expiry
from gateway.keys_cli import SENDERS_HELP, parse_channels, parse_roles, parse_senders, set_senders
from gateway.smpp_server.users import (
    DEFAULT_MAX_BINDS,
    SmppUserSpec,
    all_users,
    create_user,
    rotate_password,
)
from worker.config import Settings
from worker.redisconn import redis_client
from worker.store import now_ms
from worker.store.smpp_server import SmppServerStore


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``smpp-users`` subcommand and its own subcommands."""
    users = sub.add_parser("smpp-users", help="manage SMPP users (system_id/password)")
    usub = users.add_subparsers(dest="smpp_users_command", required=True)
    create = usub.add_parser("create", help="create an SMPP user and print its password once")
    create.add_argument("--system-id", required=True, help="1 to 15 characters")
    create.add_argument("--account", required=True, help="the tenant it sends for")
    create.add_argument("--password", default=None,
                        help="at most 8 characters (default: 8 random ones)")
    create.add_argument("--roles", default="Client", help="comma list of Client,Admin,Partner")
    create.add_argument("--channels", default="*", help="comma list, or * for all")
    create.add_argument("--rate", type=int, default=0, help="messages per second (0: no limit)")
    create.add_argument("--burst", type=int, default=0, help="messages at once (0: the rate)")
    create.add_argument("--quota", type=int, default=0, help="messages per UTC day (0: none)")
    create.add_argument("--expires", default="", help="ISO date/time (UTC) or span (30d, 12h)")
    create.add_argument("--max-binds", type=int, default=DEFAULT_MAX_BINDS,
                        help="binds at once, over every smpp-server process")
    create.add_argument("--senders", default="", help=SENDERS_HELP.replace(
        "its messages may choose", "source_addr values it may submit with"))
    senders = usub.add_parser("set-senders", help="replace the source_addr values it may use")
    senders.add_argument("system_id")
    senders.add_argument("senders", nargs="*", help="as for create (none: only an empty one)")
    listing = usub.add_parser("list", help="list SMPP users (never their passwords)")
    listing.add_argument("--account", default="")
    listing.add_argument("--json", action="store_true")
    for name, text in (("disable", "refuse its binds from now on"),
                       ("enable", "accept its binds again"),
                       ("rotate", "give it a new password and print it once")):
        usub.add_parser(name, help=text).add_argument("system_id")


async def run_smpp_users(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``smpp-users`` subcommand."""
    redis = redis_client(settings.redis_url)
    store = SmppServerStore(redis)
    try:
        command = args.smpp_users_command
        if command == "create":
            return await _create(store, args)
        if command == "list":
            return await _list(store, args)
        if command == "set-senders":
            def change(value: str) -> Awaitable[bool]:
                return store.change_user(args.system_id, "senders", value)

            done = await set_senders(change, args.system_id, args.senders)
            return 0 if done else _unknown(args.system_id)
        if command == "rotate":
            password = await rotate_password(store, args.system_id)
            if password is None:
                return _unknown(args.system_id)
            print(password)
            print(f"rotated {args.system_id}: the password above is shown only now",
                  file=sys.stderr)
            return 0
        if not await store.change_user(args.system_id, command):
            return _unknown(args.system_id)
        print(f"{args.system_id}: {command}d", file=sys.stderr)
        return 0
    except InvalidKey as exc:
        print(f"smsgw smpp-users: {exc.message}", file=sys.stderr)
        return 2
    finally:
        await redis.aclose()


async def _create(store: SmppServerStore, args: argparse.Namespace) -> int:
    spec = SmppUserSpec(
        system_id=args.system_id, account=args.account, roles=parse_roles(args.roles),
        channels=parse_channels(args.channels), rate=args.rate, burst=args.burst,
        daily_quota=args.quota, expires_at_ms=parse_expiry(args.expires, now_ms()),
        max_binds=args.max_binds, senders=parse_senders(args.senders),
    )
    password, user = await create_user(store, spec, args.password)
    print(password)
    print(f"created SMPP user {user.system_id} (account {user.account}); the password above is "
          "shown only now", file=sys.stderr)
    return 0


async def _list(store: SmppServerStore, args: argparse.Namespace) -> int:
    users = await all_users(store, args.account)
    if args.json:
        print(json.dumps([u.as_dict() for u in users], indent=1))
        return 0
    for u in users:
        state = "enabled" if u.enabled else "disabled"
        print(f"{u.system_id:16} {u.account:20} {state:9} binds<={u.max_binds} "
              f"rate={u.rate or '-'} quota={u.daily_quota or '-'}")
    return 0


def _unknown(system_id: str) -> int:
    print(f"smsgw smpp-users: no SMPP user {system_id!r}", file=sys.stderr)
    return 1
