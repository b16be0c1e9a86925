"""``smsgw numbers``: which account owns a channel's MO messages to a destination (an operator
is an Admin). See gateway/numbers.py. Exit status: 0 done, 1 unknown account or number,
2 invalid arguments.
"""

from __future__ import annotations

import argparse
import json
import sys

from gateway.errors import UnknownAccount
from gateway.numbers import InvalidNumber, assign, check_channel, check_number
from worker.config import Settings
from worker.redisconn import redis_client
from worker.store import Store


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``numbers`` subcommand and its own subcommands."""
    numbers = sub.add_parser("numbers", help="which account owns the MO messages to a number")
    nsub = numbers.add_subparsers(dest="numbers_command", required=True)
    put = nsub.add_parser("assign", help="give ACCOUNT the channel's MO messages to NUMBER")
    put.add_argument("channel")
    put.add_argument("number", help="a number or short code (a leading '+' is dropped)")
    put.add_argument("account")
    listing = nsub.add_parser("list", help="the numbers assigned on a channel")
    listing.add_argument("channel")
    listing.add_argument("--json", action="store_true")
    drop = nsub.add_parser("unassign", help="take NUMBER from its account (its MO messages go "
                           "to the channel's mo_default_account, if set)")
    drop.add_argument("channel")
    drop.add_argument("number")


async def run_numbers(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``numbers`` subcommand."""
    redis = redis_client(settings.redis_url)
    store = Store(redis, settings.retention_seconds)
    try:
        channel = check_channel(args.channel, settings.channels)
        if args.numbers_command == "list":
            return _list(channel, await store.numbers(channel), as_json=args.json)
        number = check_number(args.number)
        if args.numbers_command == "assign":
            await assign(store, channel, number, args.account)
            print(f"{channel} {number}: assigned to account {args.account}", file=sys.stderr)
            return 0
        if not await store.unassign_number(channel, number):
            print(f"smsgw numbers: {number} is not assigned on {channel}", file=sys.stderr)
            return 1
        print(f"{channel} {number}: unassigned", file=sys.stderr)
        return 0
    except InvalidNumber as exc:
        print(f"smsgw numbers: {exc.message}", file=sys.stderr)
        return 2
    except UnknownAccount as exc:
        print(f"smsgw numbers: no account {exc.args[0]!r} (create a key for it first)",
              file=sys.stderr)
        return 1
    finally:
        await redis.aclose()


def _list(channel: str, owned: dict[str, str], *, as_json: bool) -> int:
    rows = [{"channel": channel, "number": n, "account": a} for n, a in sorted(owned.items())]
    if as_json:
        print(json.dumps(rows, indent=1))
    else:
        for row in rows:
            print(f"{row['number']:22} {row['account']}")
    return 0
