"""The metadata pages over real HTTP: the operation list, and per operation its roles, routes,
DTOs and sample exchanges, the XML ones exactly the seed page's samples (CONTRACT.md)."""

from __future__ import annotations

import html
import re

import aiohttp
import pytest

from tests.integration.running import Gateway, gateway
from tests.unit.test_wire_xml import SEED_REQUEST, SEED_RESPONSE

pytestmark = pytest.mark.integration
__all__ = ["gateway"]  # the fixture

async def _page(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.text()


def _pre(page: str, pre_id: str) -> list[str]:
    match = re.search(f"<pre id='{pre_id}'>(.*?)</pre>", page, re.S)
    assert match, pre_id
    return [line.strip() for line in html.unescape(match.group(1)).splitlines() if line.strip()]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


async def test_metadata_lists_every_operation_with_links_to_its_pages(gateway: Gateway) -> None:
    status, page = await _page(gateway.base + "/metadata")
    assert status == 200
    for name in ("SendSMPPSmsRequest", "GetSMPPSmsStatus", "CreateApiKey", "SetInboundUrl",
                 "GetSMPPMoMessages"):
        assert f"/json/metadata?op={name}" in page and f"/xml/metadata?op={name}" in page
    assert "href='/docs'" in page and "href='/types/typescript'" in page


async def test_the_xml_page_of_send_shows_the_seed_samples_roles_and_route(
    gateway: Gateway,
) -> None:
    status, page = await _page(gateway.base + "/xml/metadata?op=SendSMPPSmsRequest")
    assert status == 200
    assert "Client, Admin, Partner" in page
    assert "<td>POST</td><td>/communication/message/smpp/sms</td>" in page
    assert "export class SendSMPPSmsRequest {" in html.unescape(page)
    # The seed's samples as they are: the extensions of the contract are left out of them
    assert _pre(page, "request")[5:] == _lines(SEED_REQUEST.decode())  # after the headers
    assert _pre(page, "response")[3:] == _lines(SEED_RESPONSE)
    assert _pre(page, "request")[:4:2] == ["POST /communication/message/smpp/sms HTTP/1.1",
                                            "Accept: application/xml"]


async def test_the_json_page_shows_a_json_exchange_and_an_unknown_operation_is_404(
    gateway: Gateway,
) -> None:
    status, page = await _page(gateway.base + "/json/metadata?op=GetSMPPSmsStatus")
    assert status == 200 and "GET /communication/message/smpp/sms/{apiMessageId} HTTP/1.1" in \
        html.unescape(page)
    assert '"status": "String"' in html.unescape(page)
    status, _ = await _page(gateway.base + "/json/metadata?op=Nope")
    assert status == 404
