"""`smsgw smsc-sim`: run the SMSC simulator from the command line.

Prints exactly one line, ``smsc-sim listening on HOST:PORT``, once it accepts connections (dev
mode waits for it); stops cleanly on SIGINT/SIGTERM; SIGUSR1 writes the stats file.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from worker import eventloop
from worker.gctune import tune_gc
from worker.simulator.config import SimulatorConfig
from worker.simulator.server import Simulator

DEFAULT_ACCOUNT = "smsgw:smsgw"


def _int(text: str) -> int:
    """An int in decimal or 0x-hex."""
    return int(text, 0)


def _account(text: str) -> tuple[str, str]:
    system_id, sep, password = text.partition(":")
    if not sep or not system_id:
        raise argparse.ArgumentTypeError(f"expected system_id:password, got {text!r}")
    return system_id, password


def _error_rate(text: str) -> tuple[int, float]:
    status, _, rate = text.partition(":")
    try:
        return _int(status), float(rate)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected STATUS:RATE like 0x58:0.1, got {text!r}"
        ) from None


def _error_prefix(text: str) -> tuple[str, int]:
    prefix, _, status = text.partition(":")
    try:
        return prefix, _int(status)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected PREFIX:STATUS like 999:0x0B, got {text!r}"
        ) from None


def _receipt_states(text: str) -> dict[str, float]:
    states: dict[str, float] = {}
    for item in text.split(","):
        name, _, weight = item.partition("=")
        try:
            states[name.strip().upper()] = float(weight)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected STATE=WEIGHT,... like DELIVRD=90,UNDELIV=10, got {text!r}"
            ) from None
    return states


def build_parser() -> argparse.ArgumentParser:
    """The smsc-sim argument parser."""
    p = argparse.ArgumentParser(prog="smsgw smsc-sim", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=2775, help="0 picks a free port")
    p.add_argument(
        "--account",
        type=_account,
        action="append",
        default=[],
        metavar="SYSTEM_ID:PASSWORD",
        help=f"repeatable; default {DEFAULT_ACCOUNT}",
    )
    p.add_argument("--ack-delay-ms", type=float, default=0.0)
    p.add_argument("--receipt-delay-ms", type=float, default=0.0)
    p.add_argument(
        "--receipt-states",
        type=_receipt_states,
        default={"DELIVRD": 1.0},
        metavar="DELIVRD=90,UNDELIV=5,EXPIRED=3,REJECTD=2",
    )
    p.add_argument(
        "--error-rate",
        type=_error_rate,
        action="append",
        default=[],
        metavar="STATUS:RATE",
        help="repeatable, e.g. 0x58:0.1",
    )
    p.add_argument(
        "--error-prefix",
        type=_error_prefix,
        action="append",
        default=[],
        metavar="PREFIX:STATUS",
        help="repeatable, e.g. 999:0x0B",
    )
    p.add_argument("--nack-rate", type=float, default=0.0)
    p.add_argument("--max-tps", type=float, default=None)
    p.add_argument("--window", type=int, default=None)
    p.add_argument("--drop-after", type=int, default=None, metavar="N_PDUS")
    p.add_argument("--no-answer", action="store_true", help="never answer submit_sm")
    p.add_argument("--id-format", choices=["hex", "dec"], default="hex")
    p.add_argument("--receipt-id-format", choices=["hex", "dec"], default=None)
    p.add_argument("--dates", type=int, choices=[10, 12], default=10)
    p.add_argument("--receipt-before-response", action="store_true")
    p.add_argument("--log", default=None, metavar="PATH", help="JSON lines, one per submit_sm")
    p.add_argument("--stats", default=None, metavar="PATH", help="stats JSON (SIGUSR1, exit)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--id-start", type=int, default=None)
    p.add_argument(
        "--max-records", type=int, default=1_000_000, help="submit records kept in memory"
    )
    return p


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """Turn parsed arguments into a SimulatorConfig (ValueError on inconsistent values)."""
    accounts = dict(args.account or [_account(DEFAULT_ACCOUNT)])
    return SimulatorConfig(
        accounts=accounts,
        ack_delay=args.ack_delay_ms / 1000,
        receipt_delay=args.receipt_delay_ms / 1000,
        receipt_states=args.receipt_states,
        error_rates=dict(args.error_rate),
        error_prefixes=dict(args.error_prefix),
        nack_rate=args.nack_rate,
        max_tps=args.max_tps,
        window=args.window,
        drop_after=args.drop_after,
        no_answer=args.no_answer,
        id_format=args.id_format,
        receipt_id_format=args.receipt_id_format,
        date_digits=args.dates,
        receipt_before_response=args.receipt_before_response,
        log_path=args.log,
        stats_path=args.stats,
        seed=args.seed,
        id_start=args.id_start,
        max_records=args.max_records,
    )


async def serve(config: SimulatorConfig, host: str, port: int) -> None:
    """Run until SIGINT or SIGTERM."""
    sim = Simulator(config)
    await sim.start(host, port)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if config.stats_path is not None:
        loop.add_signal_handler(signal.SIGUSR1, sim.write_stats)
    print(f"smsc-sim listening on {sim.host}:{sim.port}", flush=True)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `smsgw smsc-sim`; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    tune_gc()
    try:
        eventloop.run(serve(config, args.host, args.port))
    except OSError as exc:
        print(f"smsc-sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
