"""SMPP over TLS (issue 11): a channel with ``tls = true`` binds and submits over TLS, verifies
the SMSC's certificate against its CA bundle and server name, can present a client certificate,
and treats a TLS failure as a failed connect: logged with its reason, retried with backoff.
The certificates come from trustme CAs made by the test."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme
from redis.asyncio import Redis

from tests.smsc_double import ScriptedSmsc
from worker.bindcap import BindLeases
from worker.config import settings_from_dict
from worker.smpp import pdu
from worker.smpp.pool import ChannelPool
from worker.store import Store

pytestmark = pytest.mark.integration

WAIT = 10.0
SERVER_NAME = "smsc.test"  # not the address connected to: the channel's tls_server_name says it


async def _no_deliver(_: pdu.ShortMessage) -> int:
    return pdu.ESME_ROK


def _server_context(ca: trustme.CA, client_ca: trustme.CA | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(SERVER_NAME).configure_cert(ctx)
    if client_ca is not None:  # mutual TLS: the SMSC asks for and checks a client certificate
        ctx.verify_mode = ssl.CERT_REQUIRED
        client_ca.configure_trust(ctx)
    return ctx


def _ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "smsc-ca.pem"
    ca.cert_pem.write_to_path(path)
    return str(path)


@asynccontextmanager
async def _pool(redis: Redis, port: int, **tls: Any) -> AsyncIterator[ChannelPool]:
    raw = {"port": port, "system_id": "smsgw", "password": "secret", "tls": True,
           "tls_server_name": SERVER_NAME, "reconnect_min_seconds": 0.01,
           "reconnect_max_seconds": 0.05, **tls}
    channel = settings_from_dict({"channels": {"sim": raw}}, {}, "test").channels["sim"]
    pool = ChannelPool(channel, _no_deliver, "w", BindLeases(Store(redis, 60), "w"))
    pool.start()
    try:
        yield pool
    finally:
        await pool.stop(1.0)


async def test_binds_and_submits_over_tls_verifying_the_smsc_certificate(
    redis: Redis, tmp_path: Path
) -> None:
    ca = trustme.CA()
    async with ScriptedSmsc(ssl=_server_context(ca)) as smsc, _pool(
            redis, smsc.port, tls_ca_file=_ca_file(ca, tmp_path)) as pool:
        result = await pool.submit(pdu.ShortMessage(destination_addr="27820000001",
                                                    short_message=b"hi"), wait_bind=WAIT)
        conn = await smsc.bound_connection()
        cipher = conn.transport.get_extra_info("cipher")
    assert (result.status, result.message_id) == (pdu.ESME_ROK, "1")
    assert [s.destination_addr for s in smsc.submits] == ["27820000001"]
    assert cipher is not None  # the double's side of the connection is TLS


class _Records(logging.Handler):
    """Keeps smsgw.smpp log lines; sets ``grew`` at each, so a test waits on lines, not time."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.grew = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self.grew.set()

    async def wait_for(self, text: str, count: int) -> list[str]:
        async with asyncio.timeout(WAIT):
            while len(found := [line for line in self.lines if text in line]) < count:
                self.grew.clear()
                await self.grew.wait()
        return found


async def test_an_untrusted_smsc_certificate_is_refused_with_its_reason_and_retried(
    redis: Redis, tmp_path: Path
) -> None:
    trusted, impostor = trustme.CA(), trustme.CA()
    records = _Records()
    logger = logging.getLogger("smsgw.smpp")
    logger.addHandler(records)
    try:
        async with ScriptedSmsc(ssl=_server_context(impostor)) as smsc, _pool(
                redis, smsc.port, tls_ca_file=_ca_file(trusted, tmp_path)) as pool:
            failures = await records.wait_for("certificate verify failed", count=3)
            supervisors_alive = not any(t.done() for t in pool._tasks)
            bound = pool.bound
    finally:
        logger.removeHandler(records)
    assert all("TLS" in line and "retry in" in line for line in failures), failures
    assert supervisors_alive and bound == 0
    assert smsc.binds == 0  # no credentials ever went to the impostor


async def test_a_client_certificate_is_presented_for_mutual_tls(
    redis: Redis, tmp_path: Path
) -> None:
    server_ca, client_ca = trustme.CA(), trustme.CA()
    client = client_ca.issue_cert("smsgw-client")
    client.cert_chain_pems[0].write_to_path(tmp_path / "client.pem")
    client.private_key_pem.write_to_path(tmp_path / "client.key")
    async with ScriptedSmsc(ssl=_server_context(server_ca, client_ca=client_ca)) as smsc, _pool(
            redis, smsc.port, tls_ca_file=_ca_file(server_ca, tmp_path),
            tls_cert_file=str(tmp_path / "client.pem"),
            tls_key_file=str(tmp_path / "client.key")) as pool:
        result = await pool.submit(pdu.ShortMessage(destination_addr="27820000001",
                                                    short_message=b"hi"), wait_bind=WAIT)
        conn = await smsc.bound_connection()
        peer = conn.transport.get_extra_info("peercert")
    assert result.status == pdu.ESME_ROK
    assert "smsgw-client" in str(peer)  # the double checked it against the client CA
