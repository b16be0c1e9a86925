"""``smsgw dev``: the whole gateway on one machine, no Docker.

Starts an embedded redis-server (unless REDIS_URL is set), the SMSC simulator (unless an external
SMSC is named), one worker, the webhook deliverer, the gateway and the SMPP server, each as a
child process; creates a demo API key and a demo SMPP user; prints curl commands and an SMPP
line to copy; on Ctrl-C or SIGTERM stops every child and leaves nothing running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from gateway.auth import InvalidKey
from gateway.keys_cli import create_key
from gateway.smpp_server.users import SmppUserSpec, create_user, rotate_password
from worker.config import load_settings
from worker.redisconn import redis_client
from worker.redisproc import RedisProcess, free_port
from worker.senders import Senders, stored
from worker.store import Store
from worker.store.smpp_server import SmppServerStore

DEMO_ACCOUNT = "demo"
DEMO_SMPP_USER = "demo"
DEMO_SENDERS = Senders.of(["*"])  # a laptop tries senders freely; production lists them
STOP_SECONDS = 15.0


def run_dev(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run until SIGINT/SIGTERM or until a child dies."""
    return asyncio.run(_dev(args, dict(env)))


async def _dev(args: argparse.Namespace, env: dict[str, str]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    env.setdefault("SMSGW_LOG_FORMAT", args.log_format)  # children log like the parent
    async with contextlib.AsyncExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="smsgw-dev-")))
        if not env.get("REDIS_URL"):
            redis_proc = RedisProcess(args.redis_port)
            env["REDIS_URL"] = await redis_proc.start()
            stack.push_async_callback(redis_proc.stop)  # stopped last, after every child
            print(f"redis: {env['REDIS_URL']} (embedded)", flush=True)
        children = await stack.enter_async_context(_children())
        if args.config:
            env["SMSGW_CONFIG"] = args.config
        else:
            smsc_host, smsc_port = args.smsc_host, args.smsc_port
            if smsc_host is None:
                smsc_host, smsc_port = "127.0.0.1", args.smsc_port or free_port()
                await children.start(
                    "smsc-sim", ["smsc-sim", "--host", smsc_host, "--port", str(smsc_port),
                                 "--account", f"{args.smsc_system_id}:{args.smsc_password}",
                                 "--receipt-delay-ms", "500"],
                    env, ready=b"smsc-sim listening on")
            env["SMSGW_CONFIG"] = str(_write_config(tmp, args, smsc_host, smsc_port))
        settings = load_settings(env)
        api_key = await _demo_key(settings.redis_url, settings.retention_seconds, args.api_key)
        admin_key = await _demo_key(settings.redis_url, settings.retention_seconds, None,
                                    role="Admin", account="dev-admin", name="dev status page")
        await children.start("worker", ["worker"], env)
        await children.start("webhooks", ["webhooks"], env)
        await children.start("gateway", ["gateway", "--host", args.host, "--port",
                                         str(args.port)], env)
        smpp_port = args.smpp_port or free_port()
        await children.start("smpp-server", ["smpp-server", "--host", args.host, "--port",
                                             str(smpp_port)], env,
                             ready=b"smpp-server listening on")
        smpp_password = await _demo_smpp_user(settings.redis_url)
        await _wait_http(args.host, args.port)
        _print_banner(args.host, args.port, api_key, settings.gateway.default_channel)
        print(f"SMPP clients (bind as transmitter, receiver or transceiver; receipts come back "
              f"as deliver_sm):\n  smpp://{args.host}:{smpp_port} "
              f"system_id={DEMO_SMPP_USER} password={smpp_password}\n", flush=True)
        print(f"Live status page (a dev Admin key in the link; the page keeps it in the tab):\n"
              f"  http://{args.host}:{args.port}/admin/status#key={admin_key}\n", flush=True)
        await children.wait_any_or(stop)
        print("\nstopping…", flush=True)
    return 0


def _write_config(tmp: Path, args: argparse.Namespace, host: str, port: int) -> Path:
    path = tmp / "smsgw.dev.toml"
    path.write_text(
        "[gateway]\n"
        'default_channel = "sim"\n'
        'default_country_code = "27"\n'
        "access_log = true\n\n"  # a developer sees each request
        "[channels.sim]\n"
        f'host = "{host}"\n'
        f"port = {port}\n"
        f'system_id = "{args.smsc_system_id}"\n'
        f'password = "{args.smsc_password}"\n'
        "binds = 2\n"
        "window = 50\n"
        "enquire_link_seconds = 15\n\n"
        # A developer's webhook receiver runs on this machine (127.0.0.1, localhost).
        "[webhooks]\n"
        "allow_private_networks = true\n"
    )
    return path


async def _demo_key(
    redis_url: str, retention: int, fixed: str | None, *, role: str = "Client",
    account: str = DEMO_ACCOUNT, name: str = "dev demo",
) -> str:
    redis = redis_client(redis_url)
    try:
        return await create_key(Store(redis, retention), name=name, account=account,
                                roles=frozenset({role}), channels=None, secret=fixed,
                                senders=DEMO_SENDERS)
    finally:
        await redis.aclose()


async def _demo_smpp_user(redis_url: str) -> str:
    """The demo account's SMPP user's password: a new user, or a new password for the one a
    reused Redis already holds."""
    redis = redis_client(redis_url)
    store = SmppServerStore(redis)
    try:
        try:
            password, _ = await create_user(store, SmppUserSpec(
                system_id=DEMO_SMPP_USER, account=DEMO_ACCOUNT, senders=DEMO_SENDERS))
        except InvalidKey:
            password = await rotate_password(store, DEMO_SMPP_USER) or ""
            await store.change_user(DEMO_SMPP_USER, "senders", stored(DEMO_SENDERS))
        return password
    finally:
        await redis.aclose()


async def _wait_http(host: str, port: int) -> None:
    # The gateway is another process: poll its port (bounded) until it accepts connections.
    async with asyncio.timeout(30):
        while True:
            try:
                _, writer = await asyncio.open_connection(host, port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            await writer.wait_closed()
            return


def _print_banner(host: str, port: int, key: str, channel: str) -> None:
    base = f"http://{host}:{port}"
    body = json.dumps({"Messages": [{"channel": channel, "to": "+27820000001",
                                     "content": "Hello from smsgw",
                                     "clientMessageId": "hello-1"}]})
    print(f"""
smsgw is running: gateway {base}, one worker, the webhook deliverer, the SMSC simulator.
Ctrl-C stops everything. API docs: {base}/docs
demo API key (account '{DEMO_ACCOUNT}', role Client): {key}

Send an SMS:
  curl -s -X POST {base}/communication/message/smpp/sms \\
    -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\
    -d '{body}'

Look up its status (by clientMessageId, or by the apiMessageId the send returned):
  curl -s '{base}/communication/message/smpp/sms?clientMessageId=hello-1' \\
    -H 'Authorization: Bearer {key}'
  curl -s {base}/communication/message/smpp/sms/<apiMessageId> -H 'Authorization: Bearer {key}'
""", flush=True)


class _Children:
    """Child processes, each in its own process group, stopped in reverse order."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, asyncio.subprocess.Process]] = []
        self._pipes: list[asyncio.Task[None]] = []

    async def start(self, name: str, argv: list[str], env: Mapping[str, str],
                    ready: bytes | None = None) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", *argv, env=dict(env),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append((name, proc))
        assert proc.stdout is not None
        if ready is not None:
            async with asyncio.timeout(30):
                while ready not in (line := await proc.stdout.readline()):
                    if not line:
                        raise RuntimeError(f"{name} exited during start-up")
        self._pipes.append(asyncio.create_task(_relay(name, proc.stdout)))

    async def wait_any_or(self, stop: asyncio.Event) -> None:
        waits = [asyncio.create_task(p.wait()) for _, p in self.procs]
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*waits, stopper], return_when=asyncio.FIRST_COMPLETED)
        for (name, proc), task in zip(self.procs, waits, strict=True):
            if task in done:
                print(f"{name} exited with {proc.returncode}", file=sys.stderr)
        for task in [*waits, stopper]:
            task.cancel()

    async def stop_all(self) -> None:
        for name, proc in reversed(self.procs):
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    async with asyncio.timeout(STOP_SECONDS):
                        await proc.wait()
                except TimeoutError:
                    print(f"{name} did not stop in time; killing it", file=sys.stderr)
                    proc.kill()
                    await proc.wait()
        await asyncio.gather(*self._pipes, return_exceptions=True)


@contextlib.asynccontextmanager
async def _children() -> AsyncIterator[_Children]:
    children = _Children()
    try:
        yield children
    finally:
        await children.stop_all()


async def _relay(name: str, stream: asyncio.StreamReader) -> None:
    while line := await stream.readline():
        sys.stdout.write(f"[{name}] {line.decode(errors='replace')}")
        sys.stdout.flush()
