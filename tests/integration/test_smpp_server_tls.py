"""The SMPP server over TLS: with a certificate and key configured every connection is TLS; a
client that trusts the certificate's CA binds and submits with smpplib, one that does not
trust it cannot connect. The CA and certificate are made by the test (trustme)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from redis.asyncio import Redis

from gateway.smpp_server.server import SmppServer, running
from tests.esme import Esme
from tests.integration.test_smpp_server import add_user, in_thread, smpp_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def server(redis_url: str, ca: trustme.CA, tmp_path: Path) -> AsyncIterator[SmppServer]:
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    for more in cert.cert_chain_pems[1:]:
        more.write_to_path(str(cert_file), append=True)
    cert.private_key_pem.write_to_path(str(key_file))
    settings = smpp_settings(redis_url, tls_cert_file=str(cert_file),
                             tls_key_file=str(key_file))
    async with running(settings, "127.0.0.1", 0) as srv:
        yield srv


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    """A client context that verifies the server's certificate against ``ca`` (smpplib wraps
    its socket without a server name, so the chain is checked and the name is not)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.check_hostname = False
    ca.configure_trust(ctx)
    return ctx


async def test_a_client_trusting_the_ca_binds_and_submits_over_tls(
    server: SmppServer, redis: Redis, ca: trustme.CA,
) -> None:
    password = await add_user(redis)
    # in a thread: the TLS handshake needs the server's event loop to answer
    esme = await in_thread(Esme(server.port, ssl_context=trusting(ca)).connect)
    try:
        assert await in_thread(esme.bind, "transceiver", "acme1", password) == 0
        [(status, api_id)] = await in_thread(esme.submit_all, [("+27820000001", b"tls")], 1)
    finally:
        await in_thread(esme.close)
    assert status == 0 and api_id


async def test_a_client_that_does_not_trust_the_certificate_cannot_connect(
    server: SmppServer,
) -> None:
    def handshake() -> None:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=20)
        with trusting(trustme.CA()).wrap_socket(raw):
            pass

    with pytest.raises(ssl.SSLCertVerificationError):
        await in_thread(handshake)
