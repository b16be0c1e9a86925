"""``smsgw accounts``: accounts' parents, webhook settings and dead letters from the command
line.

An operator with access to Redis is an Admin. A command that generates the signing secret (the
account's first URL, or ``--rotate-secret``) prints it alone on stdout, once; everything else
goes to stderr. Exit status: 0 done, 1 unknown account, 2 invalid arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable

from gateway.accounts import InvalidParent, set_parent
from gateway.errors import UnknownAccount
from gateway.operations import ADMIN_OPERATIONS
from gateway.webhook_config import (
    Change,
    InvalidWebhook,
    check_choices,
    check_dead_ids,
    check_url,
    set_callback,
    set_inbound,
)
from worker.config import Settings
from worker.redisconn import redis_client
from worker.store import Store, WebhookStore
from worker.webhooks import event_id

Command = Callable[[WebhookStore, argparse.Namespace, Settings], Awaitable[int]]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``accounts`` subcommand and its own subcommands."""
    accounts = sub.add_parser("accounts", help="accounts' webhooks and dead letters")
    asub = accounts.add_subparsers(dest="accounts_command", required=True)
    show = asub.add_parser("show", help="an account's webhook URLs (never its secret)")
    show.add_argument("account")
    show.add_argument("--json", action="store_true")
    cb = asub.add_parser("set-callback", help="POST every status change of the account's "
                         "messages to URL (prints the signing secret when it is new)")
    cb.add_argument("account")
    cb.add_argument("url")
    cb.add_argument("--rotate-secret", action="store_true")
    cb.add_argument("--events", help="comma-separated statuses to post ('final' names the "
                    "final ones; default: as before, at first every status)")
    cb.add_argument("--max-batch", type=int, help="events per POST (1: one event as the body; "
                    'more: {"events": [...]})')
    cb.add_argument("--max-batch-delay-ms", type=int,
                    help="how long a batch that is not full waits for more")
    asub.add_parser("clear-callback", help="stop status webhooks").add_argument("account")
    inbound = asub.add_parser("set-inbound", help="POST the channel's MO messages to URL")
    inbound.add_argument("account")
    inbound.add_argument("channel")
    inbound.add_argument("url")
    inbound.add_argument("--rotate-secret", action="store_true")
    clear_in = asub.add_parser("clear-inbound", help="stop MO webhooks of a channel")
    clear_in.add_argument("account")
    clear_in.add_argument("channel")
    dead = asub.add_parser("dead-letters", help="webhook events given up on, newest first")
    dead.add_argument("account")
    dead.add_argument("--limit", type=int, default=100)
    dead.add_argument("--json", action="store_true")
    parent = asub.add_parser("set-parent", help="make PARENT (a Partner's account) own ACCOUNT, "
                             "or with no PARENT, no account own it")
    parent.add_argument("account")
    parent.add_argument("parent", nargs="?", default="")
    replay = asub.add_parser("replay", help="queue dead letters again (all, or those listed)")
    replay.add_argument("account")
    replay.add_argument("ids", nargs="*")


async def run_accounts(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``accounts`` subcommand."""
    redis = redis_client(settings.redis_url)
    try:
        if args.accounts_command == "set-parent":
            return await _set_parent(Store(redis, settings.retention_seconds), args)
        return await _COMMANDS[args.accounts_command](WebhookStore(redis), args, settings)
    except (InvalidWebhook, InvalidParent) as exc:
        print(f"smsgw accounts: {exc.message}", file=sys.stderr)
        return 2
    except UnknownAccount as exc:
        print(f"smsgw accounts: no account {exc.args[0]!r} (create a key for it first)",
              file=sys.stderr)
        return 1
    finally:
        await redis.aclose()


def _url(url: str, settings: Settings) -> str:
    gw = settings.gateway
    hosts = {gw.host, "127.0.0.1", "localhost"} if gw.host in ("0.0.0.0", "::") else {gw.host}
    return check_url(url, own_origins=[f"{h}:{gw.port}" for h in hosts],
                     admin_operations=ADMIN_OPERATIONS,
                     allow_private_networks=settings.webhooks.allow_private_networks)


def _channel(channel: str, settings: Settings) -> str:
    if channel not in settings.channels:
        raise InvalidWebhook("channel", f"no channel named {channel!r} in the configuration")
    return channel


def _done(change: Change, what: str) -> int:
    if change.secret:
        print(change.secret)
        print(f"{what}; the signing secret above is shown only now", file=sys.stderr)
    else:
        print(what, file=sys.stderr)
    return 0


async def _show(store: WebhookStore, args: argparse.Namespace, settings: Settings) -> int:
    targets = await store.targets(args.account)
    if targets is None:
        raise UnknownAccount(args.account)
    shown = {"account": targets.account, "callbackUrl": targets.callback_url or None,
             "inboundUrls": dict(sorted(targets.inbound.items())),
             "hasSecret": bool(targets.secret), "events": targets.options.listed(),
             "maxBatch": targets.options.max_batch,
             "maxBatchDelayMs": targets.options.max_batch_delay_ms}
    print(json.dumps(shown, indent=1) if args.json else
          "\n".join(f"{k}: {'' if v is None else v}" for k, v in shown.items()))
    return 0


async def _set_callback(store: WebhookStore, args: argparse.Namespace, settings: Settings) -> int:
    events = None if args.events is None else args.events.split(",")
    choices = check_choices(events, args.max_batch, args.max_batch_delay_ms)
    change = await set_callback(store, args.account, _url(args.url, settings),
                                rotate_secret=args.rotate_secret, choices=choices)
    return _done(change, f"account {args.account}: callback set")


async def _clear_callback(store: WebhookStore, args: argparse.Namespace,
                          settings: Settings) -> int:
    return _done(await set_callback(store, args.account, ""),
                 f"account {args.account}: callback cleared")


async def _set_inbound(store: WebhookStore, args: argparse.Namespace, settings: Settings) -> int:
    change = await set_inbound(store, args.account, _channel(args.channel, settings),
                               _url(args.url, settings), rotate_secret=args.rotate_secret)
    return _done(change, f"account {args.account}: inbound URL of {args.channel} set")


async def _clear_inbound(store: WebhookStore, args: argparse.Namespace,
                         settings: Settings) -> int:
    return _done(await set_inbound(store, args.account, args.channel, ""),
                 f"account {args.account}: inbound URL of {args.channel} cleared")


async def _set_parent(store: Store, args: argparse.Namespace) -> int:
    row = await set_parent(store, args.account, args.parent)
    print(f"account {row.account}: parent {row.parent or '(none)'}", file=sys.stderr)
    return 0


async def _dead_letters(store: WebhookStore, args: argparse.Namespace,
                        settings: Settings) -> int:
    rows = [{"id": d.dead_id, "eventId": event_id(d.fields), "reason": d.fields.get("reason"),
             "attempts": int(d.fields.get("attempts") or 0)}
            for d in await store.dead_letters(args.account, max(1, args.limit))]
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for row in rows:
            print(f"{row['id']:24} {row['eventId']:40} {row['attempts']:>4}  {row['reason']}")
    return 0


async def _replay(store: WebhookStore, args: argparse.Namespace, settings: Settings) -> int:
    count = await store.replay(args.account, check_dead_ids(args.ids))
    print(f"account {args.account}: {count} dead letters queued again", file=sys.stderr)
    return 0


_COMMANDS: dict[str, Command] = {
    "show": _show, "set-callback": _set_callback, "clear-callback": _clear_callback,
    "set-inbound": _set_inbound, "clear-inbound": _clear_inbound,
    "dead-letters": _dead_letters, "replay": _replay,
}
