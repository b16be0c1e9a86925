"""Node tools this project does not write, installed once per machine into a cache outside the
repository: ``npm install --prefix`` of pinned versions, bounded in time.

Without npm a developer's test run skips, saying why; CI (``CI=true``) has npm, and fails
instead of skipping.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

PACKAGES = ("@servicestack/cli@1.0.10", "@servicestack/client@2.1.13", "typescript@5.6.3")
INSTALL_TIMEOUT = 300
RUN_TIMEOUT = 60


def node_modules() -> Path:
    """The cache's node_modules with PACKAGES installed (installed now if need be)."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("npm and node are required in CI")
        pytest.skip("npm/node not installed: the ServiceStack client tool tests need them")
    tag = hashlib.sha256(" ".join(PACKAGES).encode()).hexdigest()[:12]
    cache = Path(tempfile.gettempdir()) / f"smsgw-npm-{tag}"
    if (cache / "node_modules" / ".complete").exists():
        return cache / "node_modules"
    # Install beside the cache, then rename: a concurrent or interrupted run never sees half.
    staging = Path(tempfile.mkdtemp(prefix="smsgw-npm-staging-"))
    subprocess.run([npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund",
                    "--no-save", "--loglevel=error", *PACKAGES],
                   check=True, timeout=INSTALL_TIMEOUT, env=_env())
    (staging / "node_modules" / ".complete").touch()
    try:
        staging.rename(cache)
    except OSError:  # another run got there first
        shutil.rmtree(staging, ignore_errors=True)
    return cache / "node_modules"


def _env() -> dict[str, str]:
    # No telemetry calls from @servicestack/cli, and loopback never through a proxy.
    return {**os.environ, "SERVICESTACK_TELEMETRY_OPTOUT": "1",
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


async def run(*argv: str, cwd: Path) -> str:
    """Run a program to completion; its stdout. Fails the test with its output if it fails."""
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=_env(), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(RUN_TIMEOUT):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}:\n{out.decode()}{err.decode()}"
    return out.decode()
