"""The ``smsgw`` command: gateway, worker, webhooks, smpp-server, smsc-sim, dev, keys,
accounts, numbers, routes, smpp-users.

This is the entry point, so it is the one place that reads the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from gateway.accounts_cli import add_parser as add_accounts_parser
from gateway.keys_cli import SENDERS_HELP
from gateway.numbers_cli import add_parser as add_numbers_parser
from gateway.routes_cli import add_parser as add_routes_parser
from gateway.smpp_server.users_cli import add_parser as add_smpp_users_parser
from gateway.store_cli import add_parser as add_store_parser
from worker.config import ConfigError, Settings, load_settings
from worker.gctune import tune_gc
from worker.logs import LOG_FORMATS, config_secrets, setup_logging


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="smsgw", description="HTTP to SMPP gateway")
    parser.add_argument("--log-level", default=os.environ.get("SMSGW_LOG_LEVEL", "INFO"))
    parser.add_argument("--log-format", choices=LOG_FORMATS,
                        default=os.environ.get("SMSGW_LOG_FORMAT", "console"),
                        help="json (one object per line) or console (env SMSGW_LOG_FORMAT)")
    sub = parser.add_subparsers(dest="command", required=True)

    gw = sub.add_parser("gateway", help="serve the HTTP API")
    gw.add_argument("--host", default=None)
    gw.add_argument("--port", type=int, default=None)
    gw.add_argument("--processes", type=int, default=1,
                    help="serve from this many processes sharing the port (e.g. one per core)")

    wk = sub.add_parser("worker", help="run an SMPP worker")
    wk.add_argument("--health-port", type=int, default=None,
                    help="serve /health/live, /health/ready and /metrics on this port")
    wk.add_argument("--health-host", default="0.0.0.0", help="address of the health port")
    wk.add_argument("--burst", action="store_true", help="exit when the queue is empty")

    sim = sub.add_parser("smsc-sim", help="run the SMSC simulator", add_help=False)
    sim.add_argument("sim_args", nargs=argparse.REMAINDER)

    dev = sub.add_parser("dev", help="run everything locally: redis, simulator, worker, gateway")
    dev.add_argument("--port", type=int, default=8080, help="gateway HTTP port")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--smsc-host", default=None, help="use this SMSC instead of the simulator")
    dev.add_argument("--smsc-port", type=int, default=2775)
    dev.add_argument("--smsc-system-id", default="smsgw")
    dev.add_argument("--smsc-password", default="secret")
    dev.add_argument("--config", default=None, help="a TOML config instead of the dev one")
    dev.add_argument("--redis-port", type=int, default=0, help="embedded redis port (0: free)")
    dev.add_argument("--smpp-port", type=int, default=2776, help="SMPP server port (0: free)")
    dev.add_argument("--api-key", default=os.environ.get("SMSGW_DEV_API_KEY"),
                     help="fixed demo API key (default: generated; env SMSGW_DEV_API_KEY)")

    keys = sub.add_parser("keys", help="manage API keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    create = ksub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--account", required=True, help="the tenant the key sends for")
    create.add_argument("--parent-account", default="",
                        help="the Partner account that owns --account")
    create.add_argument("--roles", default="Client", help="comma list of Client,Admin,Partner")
    create.add_argument("--channels", default="*", help="comma list, or * for all")
    create.add_argument("--rate", type=int, default=0, help="messages per second (0: no limit)")
    create.add_argument("--burst", type=int, default=0, help="messages at once (0: the rate)")
    create.add_argument("--quota", type=int, default=0, help="messages per UTC day (0: none)")
    create.add_argument("--expires", default="", help="ISO date/time (UTC) or span (30d, 12h)")
    create.add_argument("--secret", default=None, help=argparse.SUPPRESS)
    create.add_argument("--senders", default="", help=SENDERS_HELP)
    senders = ksub.add_parser("set-senders", help="replace the senders a key may choose")
    senders.add_argument("id")
    senders.add_argument("senders", nargs="*", help=SENDERS_HELP + " (none: no sender)")
    listing = ksub.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--account", default="")
    listing.add_argument("--json", action="store_true")
    show = ksub.add_parser("show", help="show one key")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    for name, text in (("disable", "stop a key working"), ("enable", "let a key work again"),
                       ("rotate", "give a key a new secret and print it once"),
                       ("delete", "delete a key")):
        ksub.add_parser(name, help=text).add_argument("id")
    sub.add_parser("webhooks", help="deliver webhooks (status changes and MO messages)")
    smpp = sub.add_parser("smpp-server", help="accept SMPP clients (bind, submit_sm, receipts)")
    smpp.add_argument("--host", default=None)
    smpp.add_argument("--port", type=int, default=None, help="0: a free port")
    add_smpp_users_parser(sub)
    add_accounts_parser(sub)
    add_numbers_parser(sub)
    add_routes_parser(sub)
    add_store_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``smsgw``; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["smsc-sim"]:
        from worker.simulator.cli import main as sim_main

        return sim_main(args_list[1:])
    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.log_format not in LOG_FORMATS:  # argparse does not check a default from the env
        parser.error(f"--log-format (or SMSGW_LOG_FORMAT) must be one of {LOG_FORMATS}")
    _, redactor = setup_logging(args.log_level, args.log_format)
    try:
        if args.command == "dev":
            from gateway.dev import run_dev

            return run_dev(args, dict(os.environ))
        settings = load_settings(os.environ)
    except ConfigError as exc:
        print(f"smsgw: configuration error: {exc}", file=sys.stderr)
        return 2
    redactor.add(config_secrets(settings))
    return _run(args, settings)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command in ("gateway", "worker", "webhooks", "smpp-server"):
        tune_gc()  # long-running: see worker/gctune.py
    if args.command == "gateway":
        from gateway.serve import serve

        return serve(settings, args.host or settings.gateway.host,
                     args.port or settings.gateway.port, args.processes)
    if args.command == "worker":
        from worker.runner import run_worker

        return run_worker(settings, health_port=args.health_port,
                          health_host=args.health_host, burst=args.burst)
    if args.command == "smpp-server":
        from gateway.smpp_server.server import run_smpp_server

        srv = settings.smpp_server
        return run_smpp_server(settings, args.host or srv.host,
                               srv.port if args.port is None else args.port,
                               srv.metrics_port or None)
    if args.command == "smpp-users":
        from gateway.smpp_server.users_cli import run_smpp_users

        return asyncio.run(run_smpp_users(args, settings))
    if args.command == "keys":
        from gateway.keys_cli import run_keys

        return asyncio.run(run_keys(args, settings))
    if args.command == "accounts":
        from gateway.accounts_cli import run_accounts

        return asyncio.run(run_accounts(args, settings))
    if args.command == "numbers":
        from gateway.numbers_cli import run_numbers

        return asyncio.run(run_numbers(args, settings))
    if args.command == "store":
        from gateway.store_cli import run_store

        return asyncio.run(run_store(args, settings))
    if args.command == "routes":
        from gateway.routes_cli import run_routes

        return run_routes(args, settings)
    if args.command == "webhooks":
        from worker.jobs import worker_id
        from worker.webhook_delivery import run_webhooks

        return run_webhooks(settings, worker_id())
    raise AssertionError(args.command)  # argparse only accepts the commands above
