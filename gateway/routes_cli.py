"""``smsgw routes``: the configured routes (``list``), and where a number would go (``test``).
Exit status: 0, or 1 when ``test`` finds the number would not be accepted, 2 bad arguments."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import datetime

from gateway.routes import explain, info, line
from gateway.validate import Invalid, normalise_number
from worker.config import Settings
from worker.redisconn import redis_client
from worker.routing import minute_of_week
from worker.senders import sender_problem
from worker.store import REDIS_ERRORS, Store


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``routes`` subcommand and its own subcommands."""
    routes = sub.add_parser("routes", help="the routes of the configuration")
    rsub = routes.add_subparsers(dest="routes_command", required=True)
    listing = rsub.add_parser("list", help="every route, in order (first match wins)")
    listing.add_argument("--json", action="store_true")
    test = rsub.add_parser("test", help="which route and channels a message to NUMBER takes")
    test.add_argument("number")
    test.add_argument("--account", default="", help="the sending account")
    test.add_argument("--parent", default=None,
                      help="its parent account (default: looked up in Redis)")
    test.add_argument("--at", default="", help="ISO date and time (default: now), for windows")
    test.add_argument("--sender", default="", help="the message's sender (default: none)")
    test.add_argument("--route", default="",
                      help="the route the message names (\"channel\": \"route:NAME\")")


def run_routes(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``routes`` subcommand."""
    table = settings.routes
    if args.routes_command == "list":
        if args.json:
            print(json.dumps([info(r).model_dump() for r in table.routes], indent=1))
        else:
            for route in table.routes:
                print(line(route))
            if not table:
                print("no routes: every message must name its channel", file=sys.stderr)
        return 0
    try:
        to = normalise_number(args.number, settings.gateway.default_country_code)
        at = datetime.fromisoformat(args.at).timestamp() if args.at else time.time()
        problem = sender_problem(args.sender) if args.sender else ""
        if problem:
            raise ValueError(problem)
    except (Invalid, ValueError) as exc:
        print(f"smsgw routes: {exc}", file=sys.stderr)
        return 2
    parent = args.parent
    if parent is None:
        parent = asyncio.run(_parent(settings, args.account)) if args.account else ""
    found = explain(table, to, args.account, parent, minute_of_week(at), args.sender,
                    args.route)
    print(found.text)
    return 0 if found.routed else 1


async def _parent(settings: Settings, account: str) -> str:
    redis = redis_client(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        row = await Store(redis, settings.retention_seconds).account(account)
        return row.parent if row is not None else ""
    except REDIS_ERRORS as exc:
        print(f"smsgw routes: parent account of {account!r} unknown (redis: {exc}); "
              "give it with --parent", file=sys.stderr)
        return ""
    finally:
        await redis.aclose()
